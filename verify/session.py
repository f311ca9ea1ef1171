"""The one test loop: candidates in, verdicts out, through one warm worker.

Every caller that runs tests on candidates goes through ``TestSession``: the job (testing each
candidate as it is decoded), inline verification (within a deadline) and the execution-based
rankers (probe runs). It owns the slots (at most the worker's ``parallel`` runs at once, the best
rank first), stop-at-first-pass, the deadline and cancellation; ``TestSchedule`` is its pure
bookkeeping, unit-tested without processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .runner import CandidateRun, WarmWorker


@dataclass
class _Entry:
    key: str
    rank: tuple
    run_id: int | None = None
    state: str = "waiting"  # waiting | running | done | dropped


@dataclass
class TestSchedule:
    """Which distinct candidate to test next, and when to stop.

    Each distinct key is tested once. Among the keys waiting, the best rank goes first; at most
    ``slots`` run at once. With ``stop_at_first_pass``, the first key passing every test stops
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
        """A candidate; False if its key is already known (it shares that run)."""
        if key in self.entries:
            return False
        self.entries[key] = _Entry(key, rank, state="dropped" if self.stopped else "waiting")
        return True

    def to_start(self) -> list[str]:
        """The keys to start now (best rank first), filling the free slots."""
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
        """(the key whose result counts, or None if it was cancelled by a stop; run ids to
        cancel now because this one passed)."""
        entry = self.by_run[run_id]
        was_stopped = self.stopped
        entry.state = "done" if (passed or not was_stopped) else "dropped"
        if entry.state == "dropped":
            return None, []
        cancel: list[int] = []
        if passed and self.stop_at_first_pass and not was_stopped:
            cancel = self.stop()
        return entry.key, cancel

    def stop(self) -> list[int]:
        """Nothing new starts; returns the running run ids (to cancel)."""
        self.stopped = True
        for e in self.entries.values():
            if e.state == "waiting":
                e.state = "dropped"
        return [e.run_id for e in self.running]

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
        """Distinct keys that are or will be tested."""
        return sum(e.state != "dropped" for e in self.entries.values())


@dataclass(frozen=True)
class Finished:
    """One key's verdict, with when its run started and ended (``time.monotonic()``)."""

    key: str
    run: CandidateRun
    started: float
    ended: float


class TestSession:
    """Candidates of one file against one set of node ids in a started ``WarmWorker``.

    ``add`` queues a candidate (its version of ``rel_file``) under a key; a key seen before is not
    run again. ``poll`` starts what may start and returns the next verdict; ``wait`` runs until
    idle. At ``deadline`` (``time.monotonic()``) or on ``cancel`` the running runs are cancelled
    and nothing new starts. The worker is the caller's: the session never closes it, and it
    ignores results of runs it did not start (a reused worker may still report a cancelled run
    of an earlier session). ``original``: the trusted text of ``rel_file`` the candidates were
    made from (an editor's unsaved buffer; default: the file as the project holds it): only
    function bodies may differ from it (``WarmWorker.submit``).
    """

    __test__ = False  # not a pytest class

    def __init__(self, worker: WarmWorker, rel_file: str, node_ids: tuple[str, ...], *,
                 stop_at_first_pass: bool = True, deadline: float | None = None,
                 extra_files: dict[str, str] | None = None, original: str | None = None):
        self.worker, self.rel_file, self.node_ids = worker, rel_file, tuple(node_ids)
        self.deadline, self.extra_files, self.original = deadline, extra_files, original
        self.schedule = TestSchedule(worker.parallel, stop_at_first_pass)
        self.texts: dict[str, str] = {}
        self.runs: dict[int, str] = {}  # run id -> key
        self.started_at: dict[str, float] = {}
        self.results: dict[str, CandidateRun] = {}
        self.expired = False  # the deadline stopped it

    def add(self, key: str, text: str, rank: tuple = ()) -> bool:
        """Queue ``text`` (the whole file) under ``key``; False if the key is already known."""
        if not self.schedule.add(key, rank):
            return False
        self.texts[key] = text
        return True

    def _start(self) -> None:
        for key in self.schedule.to_start():
            run_id = self.worker.submit(self.rel_file, self.texts[key], self.node_ids,
                                        extra_files=self.extra_files, original=self.original)
            self.runs[run_id] = key
            self.schedule.started(key, run_id)
            self.started_at[key] = time.monotonic()

    def poll(self, timeout: float | None) -> Finished | None:
        """Start what may start, then the next verdict within ``timeout`` seconds (None: none
        came, or one came that does not count: cancelled after a pass or at the deadline)."""
        if self.deadline is not None and time.monotonic() >= self.deadline and not self.expired:
            self.expired = True
            self.cancel()
        self._start()
        if not self.schedule.running:
            return None
        if self.deadline is not None:
            left = max(0.0, self.deadline - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        got = self.worker.next_result(timeout)
        if got is None:
            return None
        run_id, run = got
        key = self.runs.pop(run_id, None)
        if key is None:
            return None  # an earlier session's cancelled run
        counted, cancel = self.schedule.finished(run_id, run.passed)
        for other in cancel:
            self.worker.cancel(other)
        if counted is None:
            return None
        self.results[key] = run
        return Finished(key, run, self.started_at[key], time.monotonic())

    def wait(self, should_stop: Callable[[], bool] | None = None,
             on_result: Callable[[Finished], None] | None = None) -> dict[str, CandidateRun]:
        """Run until idle (or stopped); every verdict so far, by key."""
        while not self.idle and not self.expired:
            if should_stop and should_stop():
                self.cancel()
                break
            finished = self.poll(0.05)
            if finished is not None and on_result is not None:
                on_result(finished)
        return self.results

    def cancel(self) -> None:
        """Nothing new starts; the running runs are cancelled (they report as not tested)."""
        for run_id in self.schedule.stop():
            self.worker.cancel(run_id)

    @property
    def idle(self) -> bool:
        return self.schedule.idle

    @property
    def stopped(self) -> bool:
        return self.schedule.stopped

    @property
    def running(self) -> int:
        return len(self.schedule.running)

    @property
    def known(self) -> int:
        return self.schedule.known

    @property
    def tested(self) -> int:
        return self.schedule.tested


def run_each(worker: WarmWorker, rel_file: str, texts: list[str],
             node_ids: tuple[str, ...], original: str | None = None
             ) -> list[CandidateRun | None]:
    """Every text (a version of ``rel_file``) against ``node_ids``, no stop at a pass, in order:
    what benches and tests need of a session."""
    session = TestSession(worker, rel_file, node_ids, stop_at_first_pass=False, original=original)
    for i, text in enumerate(texts):
        session.add(str(i), text, (i,))
    results = session.wait()
    return [results.get(str(i)) for i in range(len(texts))]
