"""Inline completion: a solve with a short deadline, never written, shaped for the cursor."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    typed_through: str | None = None  # reused: the characters typed since they were made

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
    # A run whose tests never called the function tested nothing: shown as untested.
    items = [Proposal(c.body, offset, offset, c.mean_logprob, n,
                      None if c.run is None or c.run.never_called else c.run.n_passed)
             for c in proposals(report.candidates, report.ranked_order)]
    # Stable: within each test status the selection step's order stays.
    return Completions(sorted(items, key=_tested_first), report, list(report.warnings))


class RecentCompletions:
    """The last proposals per file, reused while the user types into them.

    Typing the first characters of a shown proposal, or an editor asking again for the same spot
    (VS Code does before it cycles), is answered at once with what is left of the proposals that
    still match, as Copilot keeps its ghost text while you type through it, instead of sampling
    (and testing) again. Anything else changed in the buffer, another setting or a character no
    proposal continues with: no reuse.
    """

    def __init__(self) -> None:
        self._last: dict[Path, tuple[str, int, Config, Completions]] = {}

    def remember(self, path: Path, text: str, offset: int, config: Config,
                 completions: Completions) -> None:
        if completions.items:
            self._last[path] = (text, offset, config, completions)
        else:
            self._last.pop(path, None)

    def reuse(self, path: Path, text: str, offset: int, config: Config) -> Completions | None:
        last = self._last.get(path)
        if last is None:
            return None
        old_text, old_offset, old_config, old = last
        typed_length = offset - old_offset
        if (typed_length < 0 or config != old_config
                or len(text) - len(old_text) != typed_length
                or not text.startswith(old_text[:old_offset])
                or text[offset:] != old_text[old_offset:]):
            return None
        typed = text[old_offset:offset]
        items = [replace(p, text=p.text[len(typed):], start=offset, end=offset)
                 for p in old.items if p.text.startswith(typed) and len(p.text) > len(typed)]
        if not items:
            return None
        return Completions(items, old.report, list(old.notes), typed_through=typed)

    def forget(self, path: Path) -> None:
        self._last.pop(path, None)
