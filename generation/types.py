"""What every backend takes and returns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .runaway import DEFAULT_RUNAWAY, RunawayRule


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0  # 0: no cut beyond the backend's candidate pool
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0
    ignore_eos: bool = False  # decode exactly max_tokens (benchmarks, calibration)
    # Cut a candidate that runs far past its siblings or loops (finish_reason "runaway"); None:
    # off (benchmarks that must compare with runs made without it). Off with ignore_eos too.
    runaway: RunawayRule | None = DEFAULT_RUNAWAY

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")


@dataclass(frozen=True)
class Completion:
    index: int  # sampling order: candidate 0 is the first sample
    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]  # the model's log-probability of each generated token (T = 1)
    finish_reason: str  # stop | length | runaway (see runaway.py) | cancelled
    # Tokens generated. A server that reports token texts but not their ids leaves ``token_ids``
    # empty and gives the count here; by default it is ``len(token_ids)``.
    token_count: int | None = None

    def __post_init__(self) -> None:
        if self.token_count is None:
            object.__setattr__(self, "token_count", len(self.token_ids))

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else -math.inf


@dataclass(frozen=True)
class GenerationResult:
    completions: tuple[Completion, ...]
    prompt_tokens: int
    seconds: float
    prompt_seconds: float
    cached_prompt_tokens: int = 0  # prompt tokens whose KV was reused from the previous request

    @property
    def generated_tokens(self) -> int:
        return sum(c.token_count for c in self.completions)


# Called with each candidate as soon as it is finished (stop, end of generation, length or
# runaway), so a caller can test candidate 1 while candidate 2 is still decoding. Never called for
# cancelled ones.
CompletionCallback = Callable[[Completion], None]


def deliver_completions(result: GenerationResult,
                        on_complete: CompletionCallback | None) -> GenerationResult:
    """For backends that learn of finished candidates only at the end: report them all then."""
    if on_complete is not None:
        for completion in result.completions:
            if completion.finish_reason != "cancelled":
                on_complete(completion)
    return result
