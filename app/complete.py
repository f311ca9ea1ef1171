"""Inline completion: a solve with a short deadline, never written, shaped for the cursor."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .choose import proposals
from .config import Config
from .report import Report
from .solve import Request, solve
from .workers import WorkerCache


@dataclass(frozen=True)
class Proposal:
    """One item for the editor: ``text`` replaces ``start``..``end`` (offsets in the buffer)."""

    text: str
    start: int
    end: int
    mean_logprob: float
    tests: int  # tests selected for the function (0: not verified)
    passed: int | None  # of those, how many passed; None: not tested

    @property
    def verified(self) -> bool:
        return self.tests > 0 and self.passed == self.tests

    @property
    def status(self) -> str:
        """passed | failed (some test failed) | untested: what the editor shows beside it."""
        if self.passed is None or self.tests == 0:
            return "untested"
        return "passed" if self.verified else "failed"

    @property
    def label(self) -> str:
        """"✓ 3/3 tests", "✗ 1/3 tests" or "untested"."""
        if self.status == "untested":
            return "untested"
        return f"{'✓' if self.verified else '✗'} {self.passed}/{self.tests} tests"


def _tested_first(item: Proposal) -> tuple:
    """Passing, then partial (more tests passed first), then untested; stable within each."""
    rank = {"passed": 0, "failed": 1, "untested": 2}[item.status]
    return rank, -(item.passed or 0)


@dataclass
class Completions:
    items: list[Proposal]  # best first: passing, partial, untested
    report: Report
    notes: list[str] = field(default_factory=list)

    @property
    def multiline(self) -> bool:
        return self.report.kind == "whole_body"

    @property
    def samples(self) -> int:
        return len(self.report.candidates)


def complete(path: Path, text: str, offset: int, config: Config,
             should_stop: Callable[[], bool] | None = None,
             workers: WorkerCache | None = None) -> Completions:
    """Proposals for the cursor at ``offset`` of ``text`` (the editor's buffer of ``path``); a
    whole body is tested within ``inline.verify_within_ms`` (0: never). Raises SolveError
    (Cancelled when ``should_stop`` turned true)."""
    wait = config.inline.verify_within_ms / 1000
    # Several items to cycle through, each with its outcome: a pass does not stop the others
    # (the deadline still ends the testing).
    config = config.evolve(**{"tests.stop_at_first_pass": False})
    request = Request(path, offset=offset, text=text, kind="at_cursor",
                      deadline=time.monotonic() + wait, write=False)
    report = solve(request, config, should_stop=should_stop, workers=workers)
    n = len(report.tests)
    items = [Proposal(c.body, offset, offset, c.mean_logprob, n,
                      None if c.run is None else c.run.n_passed)
             for c in proposals(report.candidates, report.ranked_order)]
    # Stable: within each test status the selection step's order stays.
    return Completions(sorted(items, key=_tested_first), report, list(report.warnings))
