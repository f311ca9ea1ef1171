"""The job's verification step on hand-written candidates (no model: the candidates are fixed).

Covers: passed (the best log-prob among passing), stopping at the first pass, partial, failed, and
the no-test path that says ``ranked`` and never ``passed``.
"""

import sys
from pathlib import Path

import pytest
from budgetpass.generation.source import locate_function
from budgetpass.verify import sandbox
from budgetpass.verify.job import Candidate, JobSettings, _verify_and_select

pytestmark = pytest.mark.slow

SOURCE = "def clamp(x, lo, hi):\n    \"\"\"Bound x to [lo, hi].\"\"\"\n    raise NotImplementedError\n"
TESTS = ("from mod import clamp\n\n"
         "def test_inside():\n    assert clamp(5, 0, 10) == 5\n\n"
         "def test_low():\n    assert clamp(-1, 0, 10) == 0\n\n"
         "def test_high():\n    assert clamp(11, 0, 10) == 10\n")
NODES = ("test_mod.py::test_inside", "test_mod.py::test_low", "test_mod.py::test_high")
CORRECT = "    return max(lo, min(x, hi))\n"
ALSO_CORRECT = "    return min(hi, max(lo, x))\n"
HALF = "    return max(lo, x)\n"  # passes inside and low
WRONG = "    return lo\n"


def _project(tmp_path: Path, with_tests: bool = True) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "mod.py").write_text(SOURCE)
    if with_tests:
        (tmp_path / "test_mod.py").write_text(TESTS)
    else:
        (tmp_path / "app.py").write_text("from mod import clamp\nprint(clamp(15, 0, 10), "
                                         "clamp(-3, 0, 10), clamp(4, 0, 10))\n")
    return tmp_path


def _select(tmp_path, bodies_and_logprobs, node_ids, **settings):
    project = _project(tmp_path, bool(node_ids))
    site = locate_function(SOURCE, "clamp")
    candidates = [Candidate(i, body, logprob, 10, "stop", True)
                  for i, (body, logprob) in enumerate(bodies_and_logprobs)]
    events = []
    result = _verify_and_select(candidates, SOURCE, site, "mod.py", project, node_ids,
                                sandbox.probe("auto"),
                                JobSettings(python=sys.executable, **settings), events.append,
                                None, "clamp")
    return result, candidates, events


def test_all_pass_chooses_the_best_logprob_among_passing(tmp_path):
    (status, selected, message, _), cands, events = _select(
        tmp_path, [(WRONG, -0.1), (CORRECT, -0.5), (ALSO_CORRECT, -0.3)], NODES,
        stop_at_first_pass=False)
    assert (status, selected) == ("passed", 2), message
    assert [c.run.passed for c in cands] == [False, True, True]
    assert {o.outcome for o in cands[0].run.outcomes} == {"passed", "failed"}
    assert any("assert 10 == 5" in o.message or "assert 0 == 5" in o.message
               for o in cands[0].run.outcomes)
    assert events[-1].phase == "test" and events[-1].done == 3


def test_partial_is_the_candidate_passing_most_tests(tmp_path):
    (status, selected, message, _), _, _ = _select(
        tmp_path, [(WRONG, -0.1), (HALF, -0.9)], NODES)
    assert (status, selected) == ("partial", 1)
    assert "2 of 3" in message


def test_failed_when_nothing_passes_and_duplicates_run_once(tmp_path):
    (status, selected, _, _), cands, events = _select(
        tmp_path, [("    return None\n", -0.1), ("    return None\n", -0.2)], NODES)
    assert (status, selected) == ("failed", None)
    assert cands[0].run is cands[1].run
    assert events[0].total == 1


def test_no_tests_is_ranked_by_execution_agreement_never_passed(tmp_path):
    (status, selected, message, rankings), _, _ = _select(
        tmp_path, [(WRONG, -0.01), (CORRECT, -0.5), (ALSO_CORRECT, -0.4), (HALF, -0.3)], (),
        rankers=("execution_agreement", "mean_logprob"))
    assert status == "ranked" and "UNVERIFIED" in message
    assert rankings["execution_agreement"].order[:2] == [2, 1]
    assert selected == 2
    assert rankings["mean_logprob"].order[0] == 0


def test_stops_at_the_first_pass_and_cancels_the_rest(tmp_path):
    bodies = [(CORRECT, -0.1)] + [(f"    return {i}\n", -0.2 - i / 100) for i in range(8)]
    (status, selected, message, _), cands, _ = _select(tmp_path, bodies, NODES,
                                                       parallel=1)
    assert (status, selected) == ("passed", 0)
    assert sum(c.run is None for c in cands) >= 6, "later candidates should not have been tested"
    assert "not tested" in message


def test_extra_pytest_args_reach_pytest(tmp_path):
    """``tests.extraArgs`` / JobSettings.pytest_args: ``-k`` deselecting the failing test turns a
    partial candidate into a passing one, and only the selected tests are reported."""
    (status, _, _, _), cands, _ = _select(tmp_path, [(HALF, -0.1)], NODES)
    assert status == "partial" and cands[0].run.n_passed == 2
    (status, selected, message, _), cands, _ = _select(tmp_path, [(HALF, -0.1)], NODES,
                                                       pytest_args=("-k", "not high"))
    assert (status, selected) == ("passed", 0), message
    assert [o.node_id for o in cands[0].run.outcomes] == list(NODES[:2])


def test_refused_extra_pytest_args_stop_the_job_before_any_model_loads(tmp_path):
    from budgetpass.verify.job import JobError, solve

    project = _project(tmp_path)
    before = (project / "mod.py").read_text()
    with pytest.raises(JobError, match=r"extra pytest arguments: '--junitxml=r.xml' is refused: "
                                       r"it writes results elsewhere"):
        solve(project / "mod.py", "clamp", JobSettings(pytest_args=("--junitxml=r.xml",),
                                                       model="no-such-model"))
    assert (project / "mod.py").read_text() == before
