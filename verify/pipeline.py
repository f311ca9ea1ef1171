"""Testing candidates while the rest still decode: the pure bookkeeping behind ``job.solve``.

No processes and no model here, so the scheduling rules are unit-tested on their own: which
candidate's tests start next, when a pass stops everything, how many samples and seconds a
generate-until-pass (anytime) job may spend, and how much of the testing overlapped the decoding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from budgetpass.generation.budget import K_MAX

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


@dataclass
class _Entry:
    key: str
    rank: tuple
    run_id: int | None = None
    state: str = "waiting"  # waiting | running | done | dropped


@dataclass
class TestSchedule:
    """Which distinct candidate to test next, and when to stop.

    Each distinct body is tested once. Among the bodies waiting, the best rank goes first (the job
    ranks by mean log-probability, then shortness, as the sequential job always did); at most
    ``slots`` run at once. With ``stop_at_first_pass``, the first body passing every test stops
    the schedule: nothing new starts, the running ones are to be cancelled, and a cancelled run's
    result counts only if it passed anyway.
    """

    __test__ = False  # not a pytest class

    slots: int
    stop_at_first_pass: bool = True
    stopped: bool = False
    entries: dict[str, _Entry] = field(default_factory=dict)
    by_run: dict[int, _Entry] = field(default_factory=dict)

    def add(self, key: str, rank: tuple) -> bool:
        """A decoded candidate; False if its body is already known (it shares that run)."""
        if key in self.entries:
            return False
        self.entries[key] = _Entry(key, rank, state="dropped" if self.stopped else "waiting")
        return True

    def to_start(self) -> list[str]:
        """The bodies to start now (best rank first), filling the free slots."""
        if self.stopped:
            return []
        waiting = sorted((e for e in self.entries.values() if e.state == "waiting"),
                         key=lambda e: e.rank)
        return [e.key for e in waiting[: max(0, self.slots - len(self.running))]]

    def started(self, key: str, run_id: int) -> None:
        entry = self.entries[key]
        entry.state, entry.run_id = "running", run_id
        self.by_run[run_id] = entry

    def finished(self, run_id: int, passed: bool) -> tuple[str | None, list[int]]:
        """(the body whose result counts, or None if it was cancelled by a pass; run ids to
        cancel now because this one passed)."""
        entry = self.by_run[run_id]
        was_stopped = self.stopped
        entry.state = "done" if (passed or not was_stopped) else "dropped"
        if entry.state == "dropped":
            return None, []
        cancel: list[int] = []
        if passed and self.stop_at_first_pass and not was_stopped:
            self.stopped = True
            cancel = [e.run_id for e in self.running]
            for e in self.entries.values():
                if e.state == "waiting":
                    e.state = "dropped"
        return entry.key, cancel

    @property
    def running(self) -> list[_Entry]:
        return [e for e in self.entries.values() if e.state == "running"]

    @property
    def idle(self) -> bool:
        """Nothing running and nothing that will start."""
        return not self.running and not self.to_start()

    @property
    def tested(self) -> int:
        return sum(e.state == "done" for e in self.entries.values())

    @property
    def known(self) -> int:
        """Distinct bodies that are or will be tested."""
        return sum(e.state != "dropped" for e in self.entries.values())


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
