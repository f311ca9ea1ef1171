"""What a solve returns and tells while it runs: the report, its candidates, progress events, and
the one summary of a report that the editor and the CLI show."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from budgetpass.generation.budget import Budget, BudgetUsage
from budgetpass.verify.runner import CandidateRun

from .plan import SamplingPlan


class SolveError(RuntimeError):
    """The request could not be served; the message says why and how to fix it."""


class Cancelled(SolveError):
    """``should_stop`` turned true: nothing was written."""


@dataclass
class Candidate:
    index: int
    body: str
    mean_logprob: float
    tokens: int
    finish_reason: str
    parses: bool
    problem: str = ""  # why it cannot be used, if it cannot
    run: CandidateRun | None = None  # None: not tested
    # Seconds since the job started: decoding finished, its test run started and ended.
    decoded_at: float | None = None
    test_started_at: float | None = None
    test_ended_at: float | None = None
    repair_of: int | None = None  # the failed candidate this one was asked to fix

    @property
    def decoded(self) -> bool:
        """Whether it was decoded to the end (not cancelled because another passed)."""
        return self.finish_reason != "cancelled"

    def to_json(self) -> dict:
        data = {
            "index": self.index,
            "body": self.body,
            "mean_logprob": round(self.mean_logprob, 4),
            "tokens": self.tokens,
            "finish_reason": self.finish_reason,
            "parses": self.parses,
            "problem": self.problem,
            "decoded": self.decoded,
            "tested": self.run is not None,
            "decoded_at": _rounded(self.decoded_at),
            "test_started_at": _rounded(self.test_started_at),
            "test_ended_at": _rounded(self.test_ended_at),
            "repair_of": self.repair_of,
        }
        if self.run is not None:
            data["passed"] = self.run.passed
            data["test_seconds"] = round(self.run.seconds, 3)
            data["outcomes"] = [
                {"test": o.node_id, "outcome": o.outcome, "message": o.message[:500]}
                for o in self.run.outcomes
            ]
            if not self.run.outcomes:
                data["output"] = self.run.output[-1000:]
        return data


@dataclass
class Report:
    status: str  # passed | partial | ranked | failed
    kind: str  # whole_body | rest_of_line (the request's, resolved)
    file: str
    function: str
    project: str
    model: dict
    budget: Budget
    tests: tuple[str, ...]
    candidates: list[Candidate]
    selected: int | None
    sandbox: str
    warnings: list[str]
    seconds: float
    generation_seconds: float
    message: str
    source_text: str = field(repr=False, default="")  # the file as the job read it
    written: bool = False
    rankings: dict = field(default_factory=dict)  # ranker name -> Ranking (no-test jobs)
    ranked_by: str | None = None  # the ranker whose order picked (no-test jobs)
    usage: BudgetUsage | None = None  # samples and seconds spent against those given
    plan: SamplingPlan | None = None
    pipelined: bool = False  # candidates were tested while others still decoded
    testing_seconds: float = 0.0  # wall time with at least one test run going
    overlap_seconds: float = 0.0  # wall time with decoding and testing both going
    batches: int = 1
    offset: int | None = None  # a request at a cursor: where its proposals are inserted

    @property
    def passing(self) -> list[int]:
        return [c.index for c in self.candidates if c.run is not None and c.run.passed]

    @property
    def ranked_order(self) -> list[int]:
        """Candidate indices in the order of the ranker that picked, best first ([]: none)."""
        ranking = self.rankings.get(self.ranked_by) if self.ranked_by else None
        return list(ranking.order) if ranking is not None else []

    @property
    def selected_body(self) -> str | None:
        return None if self.selected is None else self.candidates[self.selected].body

    def to_json(self) -> dict:
        budget = self.budget.to_json()
        return {
            "status": self.status,
            "kind": self.kind,
            "message": self.message,
            "file": self.file,
            "function": self.function,
            "project": self.project,
            "model": self.model,
            "budget": budget,
            "budget_used": self._budget_used(),
            "tests": list(self.tests),
            "candidates": [c.to_json() for c in self.candidates],
            "passing": self.passing,
            "selected": self.selected,
            "selected_body": self.selected_body,
            "sandbox": self.sandbox,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "generation_seconds": round(self.generation_seconds, 3),
            "written": self.written,
            "rankings": {name: r.to_json() for name, r in self.rankings.items()},
            "ranked_by": self.ranked_by,
            "pipeline": {
                "pipelined": self.pipelined,
                "plan": self.plan.to_json() if self.plan else None,
                "batches": self.batches,
                "tested": [c.index for c in self.candidates if c.run is not None],
                "not_decoded": [c.index for c in self.candidates if not c.decoded],
                "generation_seconds": round(self.generation_seconds, 3),
                "testing_seconds": round(self.testing_seconds, 3),
                "overlap_seconds": round(self.overlap_seconds, 3),
            },
        }

    def _budget_used(self) -> dict:
        """What the job spent against what it was given (samples: sequences started)."""
        usage = self.usage or BudgetUsage(self.budget.samples, len(self.candidates),
                                          self.budget.seconds, self.generation_seconds,
                                          sum(c.tokens for c in self.candidates))
        return {"samples": usage.used_samples, "seconds": round(usage.used_seconds, 3),
                "given_samples": usage.given_samples, "given_seconds": usage.given_seconds,
                "tokens": usage.generated_tokens,
                "decoded": sum(c.decoded for c in self.candidates),
                "cancelled": sum(not c.decoded for c in self.candidates),
                "runaway": sum(c.finish_reason == "runaway" for c in self.candidates)}


@dataclass(frozen=True)
class Event:
    """Progress: ``phase`` is resolve | load | generate | repair | test | done.

    generate: ``done``/``total`` tokens; test: ``done`` distinct candidates tested of ``total``
    known so far (decoded ones to test plus those still decoding). Generate and test events
    interleave while candidates are tested during decoding.
    """

    phase: str
    done: int = 0
    total: int = 0
    text: str = ""
    samples: int = 0  # candidates sampled so far (anytime: grows batch by batch)
    passing: int = 0  # distinct candidates passing every selected test so far
    seconds: float = 0.0  # since the job started


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


EventCallback = Callable[[Event], None]


def busy_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def overlap_seconds(first: Iterable[tuple[float, float]],
                    second: Iterable[tuple[float, float]]) -> float:
    """How long something of ``first`` and something of ``second`` ran at the same time."""
    first, second = list(first), list(second)
    both = busy_seconds(first) + busy_seconds(second) - busy_seconds(first + second)
    return max(0.0, both)


STATUS_WORDS = {"passed": "PASSED", "partial": "PARTIAL (some tests fail)",
                "ranked": "UNVERIFIED (no tests)", "failed": "FAILED"}


def summary(report: Report, applied: bool = False, note: str = "", apply: bool = False) -> str:
    """One line for a notification: status, message, tests, budget, and what was applied."""
    status = STATUS_WORDS.get(report.status, report.status.upper())
    style = report.model.get("prompt", {}).get("style")
    parts = [f"budgetpass: {report.function}: {status}", report.message,
             f"tests: {len(report.tests)}", *([f"{style} prompt"] if style else []),
             (f"budget: k={report.budget.samples} ({report.budget.metric}, "
              f"{report.budget.calls:g} x {report.budget.reference}), {report.seconds:.1f} s")]
    used = report.to_json()["budget_used"]
    if report.plan is not None and report.plan.anytime:
        given = (f"{used['given_seconds']:g} s" if used["given_seconds"] is not None
                 else f"{used['given_samples']} samples")
        parts.append(f"generate-until-pass: {used['samples']} samples in {report.batches} "
                     f"batch(es), {used['seconds']:.1f} s; budget {given}")
    if apply:
        parts.append("applied" if applied else (note or "nothing applied"))
    return " · ".join(parts)


def first_failure(report: Report) -> str:
    """The first failing test and its reason (a code lens's title)."""
    for cand in report.candidates:
        if cand.run is not None:
            for outcome in cand.run.outcomes:
                if outcome.outcome in ("failed", "error", "timeout"):
                    reason = (outcome.message.splitlines() or [""])[0][:80]
                    return f"{outcome.node_id}" + (f": {reason}" if reason else "")
    return "no candidate parsed" if report.candidates else "no candidates"
