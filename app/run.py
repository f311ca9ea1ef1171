"""Sampling in one thread while the request's thread tests each candidate the moment it is decoded
(through the one ``TestSession``); a pass cancels the rest of the decoding.

Without tests, or with ``tests.pipeline`` off, testing (or ranking) waits for the last candidate.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from budgetpass.generation.budget import BudgetUsage
from budgetpass.generation.prompts import Prompt, RepairHint
from budgetpass.generation.types import Completion, SamplingParams
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.session import Finished, TestSession

from .plan import SamplingPlan, anytime_batches
from .report import Cancelled, Candidate, Event, SolveError
from .target import Target

# Before a repair round the sampling waits this long at most for the last batch's verdicts.
REPAIR_WAIT_SECONDS = 10.0


class GenerateAndTest:
    """One request's candidates: ``candidates`` (by index) and, when tested, their runs.

    ``worker``: a callable that lends a started worker (``None`` when there is nothing to test);
    ``deadline``: no test starts or counts after it (``time.monotonic()``), the rest are untested.
    ``repair``: the prompt that asks to fix a failed candidate (None: no repair rounds);
    ``repair_share``: the share of a batch after one without a pass that it asks for.
    """

    def __init__(self, model, prompt: Prompt, sampling: SamplingParams, plan: SamplingPlan,
                 target: Target, node_ids: tuple[str, ...], worker: Callable[[], WarmWorker],
                 *, pipeline: bool, stop_at_first_pass: bool, deadline: float | None,
                 emit, should_stop, start: float,
                 repair: Callable[[RepairHint], Prompt] | None = None, repair_share: float = 0.0):
        self.model, self.prompt, self.sampling, self.plan = model, prompt, sampling, plan
        self.target, self.node_ids, self.lend_worker = target, node_ids, worker
        self.pipeline, self.stop_at_first_pass = pipeline, stop_at_first_pass
        self.deadline, self.emit, self.should_stop, self.start = deadline, emit, should_stop, start
        self.candidates: list[Candidate] = []
        self.by_index: dict[int, Candidate] = {}
        self.by_body: dict[str, list[Candidate]] = {}
        self.decoding: list[tuple[float, float]] = []  # each batch's (start, end), since start
        self.testing: list[tuple[float, float]] = []  # each test run's (start, end), since start
        self.usage: BudgetUsage | None = None
        self.batches = 0
        self.samples = 0  # sequences started
        self.passing = 0
        self.setup_failed = False  # pytest stopped before any test: the project's set-up
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.halt = threading.Event()  # a pass (or a failure here) ends the sampling
        self.session: TestSession | None = None
        self.worker: WarmWorker | None = None
        self.batch_began = 0.0
        self.repair, self.repair_share = repair, repair_share
        self.repair_of: dict[int, int] = {}  # candidate index -> the failed one it fixes
        self.verdict = threading.Event()  # a test run finished (the sampling thread may wait)
        self.warnings: list[str] = []  # for the report

    def _cancelled(self) -> bool:
        return bool(self.should_stop and self.should_stop())

    def _sample(self) -> None:
        """The sampling thread: every event goes through the queue to the request's thread."""
        put = self.events.put
        try:
            for batch in anytime_batches(
                    self.model, self.prompt.text, self.sampling, self.plan.max_samples,
                    self.plan.batch_size, self.plan.max_seconds,
                    should_stop=lambda: self.halt.is_set() or self._cancelled(),
                    on_token=lambda n: put(("tokens", n, time.monotonic())),
                    on_complete=lambda c: put(("complete", c, time.monotonic())),
                    on_batch_start=lambda size: put(("batch_start", size, time.monotonic())),
                    # (without pipelining no verdict comes before the sampling ends)
                    split=self._split if self.repair and self.repair_share > 0
                    and self.pipeline else None):
                put(("batch", batch, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the request's thread
            put(("error", exc, time.monotonic()))
        finally:
            put(("end", None, time.monotonic()))

    def _split(self, number: int, drawn: int, size: int) -> list[tuple[str, int]]:
        """The sampling thread, before each batch: after a batch without a pass, part of this one
        is asked to fix the closest failed candidate tested so far (most tests passed, then
        likeliest; one not yet repaired first)."""
        fresh = [(self.prompt.text, size)]
        if number == 0:
            return fresh
        if not self._verdicts_in(drawn) or (self.passing and self.stop_at_first_pass):
            return []  # stopped, or the last batch passed after all
        if any(c.run is not None and c.run.never_called for c in list(self.candidates)):
            return []  # the tests pass without calling the function: no batch can be judged
        if self.passing:
            return fresh
        repaired = set(self.repair_of.values())
        failed = [(c, message) for c in list(self.candidates) if c.run is not None
                  and not c.run.passed and (message := _first_failure(c.run))]
        if not failed:
            return fresh
        closest, message = max(failed, key=lambda f: (f[0].index not in repaired,
                                                       f[0].run.n_passed, f[0].mean_logprob))
        try:
            fix = self.repair(RepairHint(closest.body, message))
        except SolveError:  # (the prompt would not build: fresh samples instead)
            return fresh
        repairs = min(size, max(1, round(size * self.repair_share)))
        for i in range(repairs):
            self.repair_of[drawn + i] = closest.index
        self.events.put(("repair", (closest.index, repairs, size), time.monotonic()))
        return [(fix.text, repairs)] + ([(self.prompt.text, size - repairs)] if size > repairs
                                        else [])

    def _verdicts_in(self, drawn: int) -> bool:
        """Wait (up to ``REPAIR_WAIT_SECONDS``) until a failed verdict is in, or every candidate
        drawn so far that can be tested has one; False if stopped. Tested as they decode, the
        first candidates usually have theirs by the batch's end: the decoder seldom idles."""
        end = time.monotonic() + REPAIR_WAIT_SECONDS
        while not (self.halt.is_set() or self._cancelled()):
            cands = list(self.candidates)
            session = self.session
            if any(c.run is not None and not c.run.passed for c in cands) or (
                    len(cands) >= drawn and (session is None or session.expired or all(
                        c.run is not None for c in cands if c.parses))):
                return True
            if time.monotonic() > end:
                return True  # repair what has a verdict by now
            self.verdict.wait(0.05)
            self.verdict.clear()
        return False

    def run(self) -> None:
        thread = threading.Thread(target=self._sample, daemon=True, name="budgetpass-sample")
        thread.start()
        try:
            self._drive()
        finally:
            self.halt.set()
            thread.join()
            if self.session is not None:
                self.session.cancel()

    def _open_session(self) -> None:
        self.worker = self.lend_worker()
        self.session = TestSession(self.worker, self.target.rel_file, self.node_ids,
                                   stop_at_first_pass=self.stop_at_first_pass,
                                   deadline=self.deadline, original=self.target.text)

    def _drive(self) -> None:
        testable = bool(self.node_ids)
        if testable and self.pipeline:  # the sandbox warms up while the prompt is evaluated
            self._open_session()
        sampled = False
        while True:
            if self._cancelled():
                raise Cancelled("cancelled")
            session = self.session
            if session is not None and (self.pipeline or sampled):
                self._take(session.poll(0.01))
            busy = session is not None and session.running
            sampled = self._drain(None if busy else 0.05) or sampled
            if session is not None and session.stopped and not session.expired:
                self.halt.set()  # a pass (the deadline ends the testing, not the sampling)
            if not sampled:
                continue
            if not testable:
                break
            if session is None:
                if not any(c.parses for c in self.candidates):
                    break
                self._open_session()
                for cand in self.candidates:
                    self._add(cand)
                self.emit(Event("test", 0, self._total(),
                                f"testing {self.session.known} distinct candidates",
                                seconds=self._now()))
                continue
            if session.idle or session.expired or self.setup_failed:
                break

    def _take(self, finished: Finished | None) -> None:
        if finished is None:
            return
        cands = self.by_body[finished.key]
        began, ended = finished.started - self.start, finished.ended - self.start
        self.testing.append((began, ended))
        self.passing += finished.run.passed
        if finished.run.setup_failure:  # pytest never started: no other candidate can do better
            self.setup_failed = True
            self.halt.set()
        for cand in cands:
            cand.run, cand.test_started_at, cand.test_ended_at = finished.run, began, ended
        self.verdict.set()
        self.emit(Event("test", self.session.tested, self._total(),
                        f"candidate {cands[0].index + 1}: {finished.run.summary()}",
                        passing=self.passing, seconds=self._now()))

    def _add(self, cand: Candidate) -> None:
        """A candidate that parses; one with the body of an earlier one shares its run."""
        if not cand.parses or self.session is None:
            return
        self.by_body.setdefault(cand.body, []).append(cand)
        if not self.session.add(cand.body, self.target.compose(cand.body),
                                (-cand.mean_logprob, len(cand.body))):
            first = self.by_body[cand.body][0]
            cand.run, cand.test_started_at = first.run, first.test_started_at
            cand.test_ended_at = first.test_ended_at

    def _drain(self, timeout: float | None) -> bool:
        """Handle the sampling thread's events; True once it has ended."""
        ended = False
        while True:
            try:
                kind, item, at = (self.events.get(timeout=timeout) if timeout
                                  else self.events.get_nowait())
            except queue.Empty:
                return ended
            timeout = None
            if kind in ("tokens", "batch_start"):
                if kind == "batch_start":
                    self.samples += item
                    self.batch_began = at - self.start
                self.emit(Event("generate", item if kind == "tokens" else 0,
                                self.samples * self.sampling.max_tokens,
                                f"sampling {self.samples} candidates", samples=self.samples,
                                seconds=at - self.start))
            elif kind == "repair":
                failed, repairs, size = item
                self.emit(Event("repair", repairs, size,
                                f"{repairs} of the next {size} candidates fix candidate "
                                f"{failed + 1}", samples=self.samples, seconds=at - self.start))
            elif kind == "complete":
                self._decoded(item, at)
            elif kind == "batch":
                self.batches += 1
                self.usage = item.usage
                seconds = self.plan.max_seconds
                if item.number == 0 and seconds is not None and item.result.prompt_seconds > seconds:
                    self.warnings.append(
                        f"budget too small for one candidate: evaluating the prompt alone took "
                        f"{item.result.prompt_seconds:.2f} s of the {seconds:g} s budget; one "
                        "batch was drawn anyway (raise the seconds)")
                self.decoding.append((self.batch_began, at - self.start))
                for completion in item.completions:  # cancelled ones, and any not announced
                    if completion.index not in self.by_index:
                        self._decoded(completion, at)
            elif kind == "error":
                raise item
            elif kind == "end":
                ended = True

    def _decoded(self, completion: Completion, at: float) -> None:
        cand = self.target.candidate(completion, self.prompt)
        if not cand.decoded:
            cand.problem = "not decoded to the end " + (
                "(the tests could not start)" if self.setup_failed else
                "(another candidate had passed)" if self.halt.is_set()
                and not self._cancelled() else "(cancelled)")
            cand.parses = False
        cand.decoded_at = at - self.start if cand.decoded else None
        cand.repair_of = self.repair_of.get(cand.index)
        self.by_index[cand.index] = cand
        self.candidates.append(cand)
        self.candidates.sort(key=lambda c: c.index)
        self._add(cand)

    def _total(self) -> int:
        """Distinct candidates to test so far plus those still decoding (an upper bound)."""
        decoding = max(0, self.samples - len(self.candidates))
        return (self.session.known if self.session else 0) + decoding

    def _now(self) -> float:
        return time.monotonic() - self.start


def _first_failure(run) -> str:
    """The first failing (or erroring) test's message, with its node id: what a repair shows."""
    for outcome in run.outcomes:
        if outcome.outcome in ("failed", "error", "timeout"):
            return f"{outcome.node_id}: {outcome.message or outcome.outcome}"
    return "timed out" if run.timed_out else ""
