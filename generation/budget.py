"""How many small-model samples a budget buys, and a sentence saying why."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

METRICS = ("flops", "samples")


@dataclass(frozen=True)
class BudgetRequest:
    metric: str = "flops"
    reference: str = "qwen2.5-coder-1.5b"
    calls: float = 1.0  # reference-model samples the budget is worth (flops)
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

    def to_json(self) -> dict:
        return asdict(self)


def plan_budget(request: BudgetRequest, small_parameters: int, reference_parameters: int) -> Budget:
    """k small samples for the request.

    FLOPs per sample are ~2 x parameters x tokens. Both models see the same prompt and write bodies of
    about the same length (one tokenizer per family), so the token counts cancel and
    k = floor(calls x P_reference / P_small), never below one.
    """
    if request.metric == "samples":
        k = request.samples
        why = f"k = {k} small-model samples, as set (metric: samples)"
    else:
        ratio = reference_parameters / small_parameters
        k = max(1, math.floor(request.calls * ratio + 1e-9))
        why = (
            f"k = floor(calls x 2*P_ref*T / (2*P_small*T)) = floor({request.calls:g} x "
            f"{reference_parameters / 1e9:.3f}B / {small_parameters / 1e9:.3f}B) = "
            f"floor({request.calls * ratio:.2f}) = {k}"
            + (" (raised to the minimum of 1)" if request.calls * ratio < 1 else "")
        )
    return Budget(
        metric=request.metric,
        reference=request.reference,
        reference_parameters=reference_parameters,
        small_parameters=small_parameters,
        calls=request.calls,
        samples=k,
        derivation=why,
    )
