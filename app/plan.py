"""How much a request samples, and how: the budget's k (with this machine's calibrated speeds, so
metric ``time`` gives the same k to every request kind), the sampling plan (one batch, or anytime
batches until a pass) and the batches themselves. The one place that plans sampling.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from budgetpass.generation import calibration, models
from budgetpass.generation.backends import ModelSpec, choose_backend, model_parameters
from budgetpass.generation.budget import K_MAX, Budget, BudgetRequest, BudgetUsage, plan_budget
from budgetpass.generation.types import (
    Completion,
    CompletionCallback,
    GenerationResult,
    SamplingParams,
)

from .config import Config

# Anytime without a seconds budget or a sample cap: this many batches of the budget's k at most.
ANYTIME_BATCHES = 4


@dataclass(frozen=True)
class SamplingPlan:
    """How a job samples: one batch of k, or (anytime) batches until a pass or the budget's end."""

    batch_size: int
    max_samples: int
    max_seconds: float | None
    anytime: bool
    note: str = ""  # why the plan differs from what was asked, if it does

    def to_json(self) -> dict:
        return {"batch_size": self.batch_size, "max_samples": self.max_samples,
                "max_seconds": self.max_seconds, "anytime": self.anytime, "note": self.note}


def plan_sampling(k: int, has_tests: bool, anytime: bool = False, seconds: float | None = None,
                  max_samples: int | None = None, batch_size: int | None = None,
                  budget_seconds: float | None = None) -> SamplingPlan:
    """``k``: the samples the budget buys. Anytime draws batches of ``batch_size`` (default k)
    until a candidate passes, ``seconds`` (default: a time budget's seconds) are spent or
    ``max_samples`` are drawn (default: 256 with a seconds budget, else 4 batches). Without tests
    nothing can pass, so anytime draws one batch."""
    if not anytime:
        return SamplingPlan(k, k, None, False)
    batch = batch_size or k
    if not has_tests:
        return SamplingPlan(batch, batch, None, True,
                            "no tests to pass: anytime drew one batch and ranked it")
    seconds = seconds if seconds is not None else budget_seconds
    cap = max_samples or (K_MAX if seconds is not None else ANYTIME_BATCHES * batch)
    return SamplingPlan(min(batch, cap), cap, seconds, True)




@functools.lru_cache(maxsize=16)
def _budget(request: BudgetRequest, spec: ModelSpec, small_parameters: int | None) -> Budget:
    speeds = _calibrated_speeds(request, spec)
    return plan_budget(request, small_parameters or model_parameters(spec),
                       models.parameter_count(request.reference), **speeds)


def plan(config: Config, small_parameters: int | None = None) -> Budget:
    """k for the configured budget; ``small_parameters``: the opened model's count, if known
    (a remote server's). Raises ModelError or ValueError with a message for the user. Cached:
    inline completion plans once per setting, not per keystroke."""
    return _budget(config.budget.request, config.model.spec, small_parameters)


def _calibrated_speeds(request: BudgetRequest, spec: ModelSpec) -> dict:
    """The measured speeds of both models for a time budget, if calibrated: on this machine, or
    for backend openai at the endpoints ``budgetpass calibrate --endpoint`` measured (the reference
    may be served elsewhere); uncalibrated, the budget falls back to FLOPs and says so."""
    backend = choose_backend(spec.backend).name
    if request.metric != "time":
        return {}
    if backend == "openai":
        return {"small_speed": calibration.lookup_served(spec.model, spec.endpoint),
                "reference_speed": calibration.lookup_served(request.reference)}
    return {"small_speed": calibration.lookup(models.resolve(spec.model).sha256, backend,
                                              spec.threads),
            "reference_speed": calibration.lookup_model(request.reference, backend,
                                                        spec.threads)}


# One line at the cursor: a few samples at most. The batched cost of k sequences grows with k on a
# CPU (about 2.5x for k=4), and a single line has to arrive while the user still looks at it.
SINGLE_LINE_MAX_SAMPLES = 2
SINGLE_LINE_MAX_TOKENS = 24


def sampling(config: Config, kind: str, k: int, stops: tuple[str, ...], inline: bool
             ) -> tuple[int, SamplingParams]:
    """(samples, parameters) for a request: the budget's k and the configured sampling, with the
    inline token limit for completions at the cursor; one sample is drawn greedily."""
    max_tokens = config.inline.max_tokens if inline else config.sampling.max_tokens
    if kind == "rest_of_line":
        k, max_tokens = min(k, SINGLE_LINE_MAX_SAMPLES), min(max_tokens, SINGLE_LINE_MAX_TOKENS)
    params = config.sampling.params(stop=stops, max_tokens=max_tokens)
    if k == 1 and inline:
        params = replace(params, temperature=0.0)
    return k, params


# (batch number, candidates drawn so far, batch size) -> [(prompt, count), ...]
BatchSplit = Callable[[int, int, int], list[tuple[str, int]]]


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
                    on_complete: CompletionCallback | None = None,
                    on_batch_start: Callable[[int], None] | None = None,
                    split: BatchSplit | None = None) -> Iterator[AnytimeBatch]:
    """Batches of up to ``batch_size`` candidates until ``max_samples`` are drawn or
    ``max_seconds`` would be exceeded (a batch is not started if the previous one's duration says
    it would overrun; the first batch always runs). Each batch uses its own seed, so candidates do
    not repeat. ``on_token`` gets the running count of tokens over all batches; ``on_complete``
    each finished candidate as the backend reports it, with its index across batches;
    ``on_batch_start`` the size of each batch as it starts. ``split`` may share a batch among
    prompts (repair rounds): it gets (batch number, candidates drawn so far, batch size) and gives
    (prompt, count) parts, decoded in turn, whose candidates take the batch's indices in order
    (none: sampling ends)."""
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
        parts = split(number, drawn, size) if split else [(prompt, size)]
        if not parts or (should_stop and should_stop()):
            return  # (the split may wait for verdicts, and one may have passed meanwhile)
        if on_batch_start:
            on_batch_start(size)
        results: list[tuple[int, GenerationResult]] = []
        offset = 0  # of the part within the batch
        for part_prompt, count in parts:
            if results and should_stop and should_stop():
                break
            report_tokens = (lambda n, base=tokens: on_token(base + n)) if on_token else None
            report_done = (lambda c, base=drawn + offset: on_complete(
                replace(c, index=base + c.index))) if on_complete else None
            part = backend.generate(
                part_prompt, count, replace(params, seed=params.seed + 1000 * number + offset),
                on_token=report_tokens, should_stop=should_stop, on_complete=report_done)
            results.append((offset, part))
            offset += count
            tokens += part.generated_tokens
        result = _joined(results)
        # The next batch's estimate: the first one evaluated the prompt, which the next finds in
        # the backend's prompt cache (llama.cpp, vLLM); later batches are measured as they are.
        last_seconds = result.seconds - (result.prompt_seconds if number == 0 else 0.0)
        completions = tuple(replace(c, index=drawn + c.index) for c in result.completions)
        drawn += offset  # sequences started: the parts' counts (all of size unless stopped)
        used = time.monotonic() - start
        more_time = max_seconds is None or used + last_seconds <= max_seconds
        usage = BudgetUsage(max_samples, drawn, max_seconds, used, tokens)
        cancelled = any(c.finish_reason == "cancelled" for c in completions)
        yield AnytimeBatch(number, completions, result, usage,
                           last=cancelled or drawn >= max_samples or not more_time)
        if cancelled:
            return
        number += 1


def _joined(parts: list[tuple[int, GenerationResult]]) -> GenerationResult:
    """One batch's result from its parts (each part's indices moved by its offset)."""
    if len(parts) == 1 and parts[0][0] == 0:
        return parts[0][1]
    return GenerationResult(
        tuple(replace(c, index=offset + c.index) for offset, part in parts
              for c in part.completions),
        sum(part.prompt_tokens for _, part in parts), sum(part.seconds for _, part in parts),
        sum(part.prompt_seconds for _, part in parts),
        sum(part.cached_prompt_tokens for _, part in parts))
