"""Generate-until-pass: sample batches until a candidate passes or the budget is spent.

The verify job drives the generator: it tests each batch's candidates and simply stops iterating
(or calls ``close()``) once one passes, so easy functions cost one small batch and hard ones get
the whole budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from .budget import BudgetUsage
from .types import Completion, CompletionCallback, GenerationResult, SamplingParams


@dataclass(frozen=True)
class AnytimeBatch:
    number: int  # 0, 1, ...
    completions: tuple[Completion, ...]  # indices continue across batches
    result: GenerationResult
    usage: BudgetUsage  # cumulative, including this batch
    last: bool  # the budget allows no further batch


def anytime_batches(backend, prompt: str, params: SamplingParams, max_samples: int,
                    batch_size: int, max_seconds: float | None = None,
                    should_stop: Callable[[], bool] | None = None,
                    on_token: Callable[[int], None] | None = None,
                    on_complete: CompletionCallback | None = None) -> Iterator[AnytimeBatch]:
    """Batches of up to ``batch_size`` candidates until ``max_samples`` are drawn or
    ``max_seconds`` would be exceeded (a batch is not started if the previous one's duration says
    it would overrun; the first batch always runs). Each batch uses its own seed, so candidates do
    not repeat. ``on_token`` gets the running count of tokens over all batches; ``on_complete``
    each finished candidate as the backend reports it, with its index across batches."""
    if max_samples < 1 or batch_size < 1:
        raise ValueError("max_samples and batch_size must be at least 1")
    start = time.monotonic()
    drawn = tokens = 0
    number = 0
    last_seconds = 0.0
    while drawn < max_samples:
        elapsed = time.monotonic() - start
        if max_seconds is not None and number > 0 and elapsed + last_seconds > max_seconds:
            return
        if should_stop and should_stop():
            return
        size = min(batch_size, max_samples - drawn)
        batch_params = replace(params, seed=params.seed + 1000 * number)
        report_tokens = (lambda n, base=tokens: on_token(base + n)) if on_token else None
        report_done = (lambda c, base=drawn: on_complete(replace(c, index=base + c.index))) \
            if on_complete else None
        result = backend.generate(prompt, size, batch_params, on_token=report_tokens,
                                  should_stop=should_stop, on_complete=report_done)
        last_seconds = result.seconds
        completions = tuple(replace(c, index=drawn + c.index) for c in result.completions)
        drawn += size
        tokens += result.generated_tokens
        used = time.monotonic() - start
        more_time = max_seconds is None or used + last_seconds <= max_seconds
        usage = BudgetUsage(max_samples, drawn, max_seconds, used, tokens)
        cancelled = any(c.finish_reason == "cancelled" for c in completions)
        yield AnytimeBatch(number, completions, result, usage,
                           last=cancelled or drawn >= max_samples or not more_time)
        if cancelled:
            return
        number += 1
