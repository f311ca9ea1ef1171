"""The one test loop: its schedule's rules (test order, stop at the first pass) and the session
over a scripted worker (deadline, cancellation, results of an earlier session ignored). The real
worker's side is tested in test_sandbox.py, test_discovery.py and tests/app."""

import time

from budgetpass.verify.runner import CandidateRun
from budgetpass.verify.session import TestSchedule, TestSession


def test_best_rank_starts_first_and_slots_limit_what_runs():
    schedule = TestSchedule(slots=2)  # ranks are (-mean log-prob, length): lowest first
    assert schedule.add("a", (0.5, 10)) and schedule.add("b", (0.1, 10))
    assert not schedule.add("a", (0.5, 10)), "a duplicate body shares the first one's run"
    schedule.add("c", (0.1, 5))
    assert schedule.to_start() == ["c", "b"]  # best log-prob, then shorter
    schedule.started("c", 0)
    schedule.started("b", 1)
    assert schedule.to_start() == []
    assert schedule.finished(0, passed=False) == ("c", [])
    assert schedule.to_start() == ["a"]
    assert schedule.known == 3 and schedule.tested == 1


def test_a_pass_stops_the_schedule_and_cancels_the_running_ones():
    schedule = TestSchedule(slots=2)
    for key, rank in (("a", 0.1), ("b", 0.2), ("c", 0.3)):
        schedule.add(key, (rank, 1))
    for run_id, key in enumerate(schedule.to_start()):
        schedule.started(key, run_id)
    assert schedule.finished(1, passed=True) == ("b", [0])
    assert schedule.stopped and schedule.to_start() == []
    assert schedule.finished(0, passed=False) == (None, []), "cancelled: neither tested nor failed"
    assert schedule.idle and schedule.tested == 1
    assert schedule.add("d", (0.01, 1)) and schedule.to_start() == [], "nothing new after a pass"
    assert schedule.known == 1


def test_a_cancelled_run_that_passed_anyway_counts():
    schedule = TestSchedule(slots=2)
    schedule.add("a", (0, 1))
    schedule.add("b", (0, 2))
    schedule.started("a", 0)
    schedule.started("b", 1)
    schedule.finished(0, passed=True)
    assert schedule.finished(1, passed=True) == ("b", [])
    assert schedule.tested == 2


def test_without_stop_at_first_pass_everything_is_tested():
    schedule = TestSchedule(slots=1, stop_at_first_pass=False)
    schedule.add("a", (0, 1))
    schedule.add("b", (0, 2))
    schedule.started("a", 0)
    assert schedule.finished(0, passed=True) == ("a", [])
    assert not schedule.stopped and schedule.to_start() == ["b"]



class ScriptedWorker:
    """submit/next_result/cancel as WarmWorker has them; a run passes if its text says PASS and
    finishes ``seconds`` after it was submitted."""

    def __init__(self, parallel=2, seconds=0.0):
        self.parallel, self.seconds = parallel, seconds
        self.pending: dict[int, tuple[float, bool]] = {}
        self.cancelled: list[int] = []
        self.next_id = 0
        self.originals: list[str | None] = []

    def submit(self, rel_file, text, node_ids, extra_files=None, original=None):
        run_id, self.next_id = self.next_id, self.next_id + 1
        self.originals.append(original)
        self.pending[run_id] = (time.monotonic() + self.seconds, "PASS" in text)
        return run_id

    def cancel(self, run_id):
        self.cancelled.append(run_id)

    def next_result(self, timeout):
        if not self.pending:
            return None
        run_id = min(self.pending, key=lambda i: self.pending[i][0])
        due, passed = self.pending[run_id]
        wait = due - time.monotonic()
        if timeout is not None and wait > timeout:
            time.sleep(max(0.0, timeout))
            return None
        time.sleep(max(0.0, wait))
        del self.pending[run_id]
        return run_id, CandidateRun(passed, (), 0.0, False, 0)


def test_session_stops_at_the_first_pass_and_keeps_each_key_once():
    worker = ScriptedWorker(parallel=1)
    session = TestSession(worker, "m.py", ("t",))
    assert session.add("a", "fail", (1,)) and session.add("b", "PASS", (0,))
    assert not session.add("b", "PASS again", (0,)), "a known key shares its run"
    session.add("c", "fail", (2,))
    results = session.wait()
    assert list(results) == ["b"] and results["b"].passed, "best rank first; a pass stops it"
    assert session.stopped and session.tested == 1


def test_session_without_stop_tests_every_key_and_reports_each():
    worker = ScriptedWorker(parallel=2)
    session = TestSession(worker, "m.py", ("t",), stop_at_first_pass=False)
    for key in ("PASS-1", "fail", "PASS-2"):
        session.add(key, key)
    seen = []
    results = session.wait(on_result=lambda f: seen.append(f.key))
    assert sorted(results) == sorted(seen) == ["PASS-1", "PASS-2", "fail"]
    assert [results[k].passed for k in ("PASS-1", "fail", "PASS-2")] == [True, False, True]


def test_session_deadline_cancels_what_runs_and_counts_nothing_after_it():
    worker = ScriptedWorker(parallel=1, seconds=0.3)
    session = TestSession(worker, "m.py", ("t",), deadline=time.monotonic() + 0.1)
    session.add("a", "PASS")
    session.add("b", "PASS")
    started = time.monotonic()
    assert session.wait() == {}
    assert session.expired and worker.cancelled == [0]
    assert time.monotonic() - started < 0.3, "the deadline ends the wait"


def test_session_ignores_results_of_runs_it_did_not_start():
    worker = ScriptedWorker(parallel=2)
    stale = worker.submit("m.py", "PASS", ("t",))  # an earlier session's cancelled run
    session = TestSession(worker, "m.py", ("t",))
    session.add("mine", "fail")
    results = session.wait()
    assert list(results) == ["mine"] and not results["mine"].passed
    assert stale not in session.runs


def test_cancel_stops_new_runs():
    worker = ScriptedWorker(parallel=1, seconds=0.05)
    session = TestSession(worker, "m.py", ("t",))
    session.add("a", "fail")
    session.add("b", "fail")
    assert session.poll(0) is None  # a started
    session.cancel()
    assert worker.cancelled == [0] and session.wait() == {}


def test_session_gives_the_worker_the_trusted_text_of_every_candidate():
    """``original``: what the candidates were made from (an editor's buffer), for each submit."""
    worker = ScriptedWorker(parallel=2)
    session = TestSession(worker, "m.py", ("t",), stop_at_first_pass=False, original="buffer")
    session.add("a", "fail")
    session.add("b", "fail")
    session.wait()
    assert worker.originals == ["buffer", "buffer"]
