"""How many small-model samples a budget buys, and a sentence saying why."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .calibration import ModelSpeed

METRICS = ("flops", "time", "samples")
K_MAX = 256  # the most candidates a time budget may ask for in one request
# Token counts a time budget is planned for when the caller does not know them yet: a FIM prompt
# of a function in its file, and a body (HumanEval bodies average ~50 tokens with Qwen's tokenizer).
DEFAULT_PROMPT_TOKENS = 400
DEFAULT_NEW_TOKENS = 96


@dataclass(frozen=True)
class BudgetRequest:
    metric: str = "flops"
    reference: str = "qwen2.5-coder-1.5b"
    calls: float = 1.0  # reference-model samples the budget is worth (flops, time)
    samples: int = 4  # small-model samples, for metric "samples"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"budget metric must be one of {', '.join(METRICS)}, not {self.metric!r}")
        if not (self.calls > 0 and math.isfinite(self.calls)):
            raise ValueError(f"budget calls must be a positive number, not {self.calls!r}")
        if self.samples < 1:
            raise ValueError(f"budget samples must be at least 1, not {self.samples!r}")


@dataclass(frozen=True)
class Budget:
    metric: str
    reference: str
    reference_parameters: int
    small_parameters: int
    calls: float
    samples: int  # k: candidates to draw from the small model
    derivation: str
    seconds: float | None = None  # metric time: the wall time the budget is worth, if known
    calibrated: bool | None = None  # metric time: from this machine's calibration (else a fallback)

    def to_json(self) -> dict:
        return asdict(self)


def plan_budget(request: BudgetRequest, small_parameters: int, reference_parameters: int,
                small_speed: ModelSpeed | None = None, reference_speed: ModelSpeed | None = None,
                prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
                new_tokens: int = DEFAULT_NEW_TOKENS) -> Budget:
    """k small samples for the request.

    flops: FLOPs per sample are ~2 x parameters x tokens. Both models see the same prompt and write
    bodies of about the same length (one tokenizer per family), so the token counts cancel and
    k = floor(calls x P_reference / P_small), never below one.

    time: k = the most small-model candidates whose one batched request takes no longer than
    ``calls`` reference generations, from both models' calibrated speeds on this machine
    (``budgetpass calibrate``). Without a calibration it falls back to the FLOPs ratio and says so.
    """
    seconds = calibrated = None
    if request.metric == "samples":
        k = request.samples
        why = f"k = {k} small-model samples, as set (metric: samples)"
    elif request.metric == "time" and small_speed and reference_speed:
        seconds = request.calls * reference_speed.seconds(prompt_tokens, new_tokens, 1)
        k = 1
        while k < K_MAX and small_speed.seconds(prompt_tokens, new_tokens, k + 1) <= seconds:
            k += 1
        calibrated = True
        why = (f"k = {k}: {k} candidates of {small_speed.model} in one batched request take "
               f"~{small_speed.seconds(prompt_tokens, new_tokens, k):.1f} s <= {request.calls:g} x "
               f"{reference_speed.model} generation(s) = {seconds:.1f} s on this machine "
               f"({small_speed.backend}, calibrated {small_speed.measured_at}; planned for a "
               f"{prompt_tokens}-token prompt and {new_tokens} new tokens)")
        if small_speed.seconds(prompt_tokens, new_tokens, 1) > seconds:
            why += " (raised to the minimum of 1)"
    else:
        ratio = reference_parameters / small_parameters
        k = max(1, math.floor(request.calls * ratio + 1e-9))
        why = (
            f"k = floor(calls x 2*P_ref*T / (2*P_small*T)) = floor({request.calls:g} x "
            f"{reference_parameters / 1e9:.3f}B / {small_parameters / 1e9:.3f}B) = "
            f"floor({request.calls * ratio:.2f}) = {k}"
            + (" (raised to the minimum of 1)" if request.calls * ratio < 1 else "")
        )
        if request.metric == "time":
            calibrated = False
            missing = [name for name, speed in (("the small model", small_speed),
                                                 ("the reference", reference_speed)) if not speed]
            why = (f"UNCALIBRATED time budget: {' and '.join(missing)} not calibrated on this "
                   f"machine, so the FLOPs ratio stands in for the time ratio (the paper's Table 1 "
                   f"time ratios are not bundled here); run `budgetpass calibrate`. {why}")
    return Budget(
        metric=request.metric,
        reference=request.reference,
        reference_parameters=reference_parameters,
        small_parameters=small_parameters,
        calls=request.calls,
        samples=k,
        derivation=why,
        seconds=seconds,
        calibrated=calibrated,
    )


@dataclass(frozen=True)
class BudgetUsage:
    """What a job spent against what it was given (every result reports both)."""

    given_samples: int
    used_samples: int
    given_seconds: float | None
    used_seconds: float
    generated_tokens: int

    def to_json(self) -> dict:
        return asdict(self)
