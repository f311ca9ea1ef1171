"""The one selection step on fixed candidates, through the real path (solve: the sandbox, the test
session, the rankers); only the model is scripted, so the candidates are the ones written here.

Covers: passed (the best log-prob among passing), stopping at the first pass, partial, failed,
duplicates tested once, extra pytest options, and the no-test path that says ``ranked``, never
``passed``.
"""

import sys
import time
from pathlib import Path

import pytest
from budgetpass.app import solve as solving
from budgetpass.app.complete import complete
from budgetpass.app.config import ConfigError, build
from budgetpass.app.solve import Request, solve
from budgetpass.generation.backends import BackendChoice, ModelSpec, OpenedModel
from budgetpass.generation.budget import plan_budget
from budgetpass.generation.prompts import LEFT_TO_RIGHT, TemplateChoice
from budgetpass.generation.types import Completion, GenerationResult

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


class ScriptedBackend:
    """Generates the given (body, mean log-prob) pairs, in order, as one batch (taking
    ``seconds``)."""

    def __init__(self, bodies, seconds=0.0):
        self.bodies, self.seconds = bodies, seconds
        self.busy = False

    def generate(self, prompt, n, params, on_token=None, should_stop=None, on_complete=None):
        time.sleep(self.seconds)
        completions = []
        for i, (body, logprob) in enumerate(self.bodies[:n]):
            c = Completion(i, body, tuple(range(10)), (logprob,) * 10, "stop")
            completions.append(c)
            if on_complete:
                on_complete(c)
        return GenerationResult(tuple(completions), 10, 0.01, 0.0)


def _project(tmp_path: Path, with_tests: bool = True) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "mod.py").write_text(SOURCE)
    if with_tests:
        (tmp_path / "test_mod.py").write_text(TESTS)
    else:
        (tmp_path / "app.py").write_text("from mod import clamp\nprint(clamp(15, 0, 10), "
                                         "clamp(-3, 0, 10), clamp(4, 0, 10))\n")
    return tmp_path


class ReviewingBackend(ScriptedBackend):
    """Also scores text (the reviewer's log p(docstring | code)): ``liked`` code scores high."""

    def __init__(self, bodies, liked: str):
        super().__init__(bodies)
        self.liked, self.scored = liked, 0

    def score(self, prompt, continuation):
        self.scored += 1
        return [-0.1 if self.liked in prompt else -2.0] * 3


def _use(monkeypatch, backend):
    opened = OpenedModel(ModelSpec(), BackendChoice("llama.cpp", "scripted"), backend, "scripted",
                         int(5e8), TemplateChoice(LEFT_TO_RIGHT, "scripted"))
    monkeypatch.setattr(solving, "open_model", lambda spec: opened)
    monkeypatch.setattr(solving.planning, "plan", lambda config: plan_budget(
        config.budget.request, int(5e8), int(15e8)))


def _select(tmp_path, monkeypatch, bodies_and_logprobs, with_tests=True, deadline=None,
            seconds=0.0, backend=None, **settings):
    project = _project(tmp_path, with_tests)
    _use(monkeypatch, backend or ScriptedBackend(bodies_and_logprobs, seconds))
    config = build({"budget.metric": "samples", "budget.samples": len(bodies_and_logprobs),
                    "tests.python": sys.executable, **settings})
    events = []
    report = solve(Request(project / "mod.py", "clamp", deadline=deadline), config,
                   on_event=events.append)
    return report, report.candidates, [e for e in events if e.phase == "test"]


def test_all_pass_chooses_the_best_logprob_among_passing(tmp_path, monkeypatch):
    report, cands, events = _select(
        tmp_path, monkeypatch, [(WRONG, -0.1), (CORRECT, -0.5), (ALSO_CORRECT, -0.3)],
        **{"tests.stop_at_first_pass": False})
    assert (report.status, report.selected) == ("passed", 2), report.message
    assert report.tests == NODES
    assert [c.run.passed for c in cands] == [False, True, True]
    assert {o.outcome for o in cands[0].run.outcomes} == {"passed", "failed"}
    assert any("assert 10 == 5" in o.message or "assert 0 == 5" in o.message
               for o in cands[0].run.outcomes)
    assert events[-1].phase == "test" and events[-1].done == 3


def test_partial_is_the_candidate_passing_most_tests(tmp_path, monkeypatch):
    report, _, _ = _select(tmp_path, monkeypatch, [(WRONG, -0.1), (HALF, -0.9)])
    assert (report.status, report.selected) == ("partial", 1)
    assert "2 of 3" in report.message


def test_failed_when_nothing_passes_and_duplicates_run_once(tmp_path, monkeypatch):
    report, cands, events = _select(
        tmp_path, monkeypatch, [("    return None\n", -0.1), ("    return None\n", -0.2)])
    assert (report.status, report.selected) == ("failed", None)
    assert cands[0].run is cands[1].run
    assert len([e for e in events if e.text.startswith("candidate")]) == 1, "one run for both"


def test_no_tests_is_ranked_by_execution_agreement_never_passed(tmp_path, monkeypatch):
    report, _, _ = _select(
        tmp_path, monkeypatch,
        [(WRONG, -0.01), (CORRECT, -0.5), (ALSO_CORRECT, -0.4), (HALF, -0.3)], with_tests=False,
        **{"ranking.prefer": "execution"})
    assert report.status == "ranked" and "UNVERIFIED" in report.message
    assert report.rankings["execution_agreement"].order[:2] == [2, 1]
    assert report.selected == 2
    assert report.rankings["mean_logprob"].order[0] == 0


# No tests, app.py's call sites as inputs: CORRECT and ALSO_CORRECT agree on all three, HALF on
# two, WRONG (the best log-prob) on one.
NO_TESTS = [(WRONG, -0.01), (CORRECT, -0.5), (ALSO_CORRECT, -0.4), (HALF, -0.3)]


def test_no_tests_default_ranker_is_combined_agreement_then_reviewer(tmp_path, monkeypatch):
    """``combined`` (the default): the agreeing cluster beats the log-prob outlier; within it the
    reviewer score plus log-prob decides, and the message says which evidence chose."""
    report, _, _ = _select(tmp_path, monkeypatch, NO_TESTS, with_tests=False)
    assert (report.status, report.ranked_by) == ("ranked", "combined")
    assert report.rankings["combined"].order == [2, 1, 3, 0]  # ties by log-prob: no reviewer
    assert "by combined" in report.message and "agrees with 1 of 3" in report.message
    assert "UNVERIFIED" in report.message and report.to_json()["ranked_by"] == "combined"
    reviewing = ReviewingBackend(NO_TESTS, liked="min(x, hi)")
    reviewed, _, _ = _select(tmp_path / "again", monkeypatch, NO_TESTS, with_tests=False,
                             backend=reviewing)
    assert reviewing.scored == 4 and reviewed.rankings["combined"].order == [1, 2, 3, 0]
    assert reviewed.selected == 1 and "reviewer -0.100" in reviewed.message


def _inline(tmp_path, monkeypatch, within_ms):
    """complete() on clamp's emptied body (no tests; app.py calls it) with NO_TESTS's bodies."""
    project = _project(tmp_path, with_tests=False)
    backend = ReviewingBackend([(b.strip() + "\n", lp) for b, lp in NO_TESTS], "min(x, hi)")
    _use(monkeypatch, backend)
    text = SOURCE.replace("    raise NotImplementedError\n", "    \n")
    config = build({"budget.metric": "samples", "budget.samples": 4,
                    "tests.python": sys.executable, "inline.verify_within_ms": within_ms})
    return complete(project / "mod.py", text, text.index("    \n") + 4, config), backend


def test_inline_whole_body_without_tests_is_ordered_by_the_default_ranker(tmp_path, monkeypatch):
    """The same selection step orders inline proposals: the agreeing cluster first, within the
    deadline; no reviewer scores there (a scoring pass per candidate does not fit)."""
    result, backend = _inline(tmp_path, monkeypatch, 600_000)
    assert result.multiline and result.report.tests == ()
    assert result.report.ranked_by == "combined" and backend.scored == 0
    assert [c.text.strip() for c in result.items] == [
        b.strip() for b in (ALSO_CORRECT, CORRECT, HALF, WRONG)]
    # No time left once sampled: no execution signals either, so the log-prob order decides.
    late, _ = _inline(tmp_path / "late", monkeypatch, 0)
    assert late.report.ranked_by == "mean_logprob"
    assert "time limit had passed" in late.report.rankings["combined"].note
    assert [c.text.strip() for c in late.items] == [
        b.strip() for b in (WRONG, HALF, ALSO_CORRECT, CORRECT)]


def test_stops_at_the_first_pass_and_cancels_the_rest(tmp_path, monkeypatch):
    bodies = [(CORRECT, -0.1)] + [(f"    return {i}\n", -0.2 - i / 100) for i in range(8)]
    report, cands, _ = _select(tmp_path, monkeypatch, bodies, **{"tests.parallel": 1})
    assert (report.status, report.selected) == ("passed", 0)
    assert sum(c.run is None for c in cands) >= 6, "later candidates should not have been tested"
    assert "not tested" in report.message


def test_extra_pytest_args_reach_pytest(tmp_path, monkeypatch):
    """``tests.extraArgs``: ``-k`` deselecting the failing test turns a partial candidate into a
    passing one, and only the selected tests are reported."""
    report, cands, _ = _select(tmp_path, monkeypatch, [(HALF, -0.1)])
    assert report.status == "partial" and cands[0].run.n_passed == 2
    report, cands, _ = _select(tmp_path, monkeypatch, [(HALF, -0.1)],
                               **{"tests.extra_args": ("-k", "not high")})
    assert (report.status, report.selected) == ("passed", 0), report.message
    assert [o.node_id for o in cands[0].run.outcomes] == list(NODES[:2])


def test_refused_extra_pytest_args_stop_before_any_model_loads(tmp_path):
    project = _project(tmp_path)
    before = (project / "mod.py").read_text()
    with pytest.raises(ConfigError, match=r"tests.extra_args: '--junitxml=r.xml' is refused: "
                                          r"it writes results elsewhere"):
        build({"tests.extra_args": ("--junitxml=r.xml",), "model.name": "no-such-model"})
    assert (project / "mod.py").read_text() == before


def test_a_deadline_leaves_the_rest_untested_and_says_so(tmp_path, monkeypatch):
    """Inline's shape of the same path: a deadline already past means no tests at all."""
    report, _, _ = _select(tmp_path, monkeypatch, [(CORRECT, -0.1)])
    assert report.status == "passed"
    late = solve(Request(tmp_path / "mod.py", "clamp", deadline=time.monotonic() - 1),
                 build({"budget.metric": "samples", "budget.samples": 1}))
    assert late.tests == () and late.status == "ranked"


def test_a_deadline_before_the_decode_ends_leaves_candidates_decoded_but_untested(
        tmp_path, monkeypatch):
    """The deadline bounds the testing, never the sampling: what was decoded is kept, untested,
    and the verdict says so instead of calling it a failure."""
    report, cands, _ = _select(tmp_path, monkeypatch, [(WRONG, -0.1), (CORRECT, -0.5)],
                               deadline=time.monotonic() + 0.3, seconds=0.6)
    assert report.tests == NODES and all(c.decoded and c.run is None for c in cands)
    assert report.status == "ranked" and "before the time limit" in report.message
    assert report.selected == 0


def test_tests_that_never_call_the_function_cannot_verify_it(tmp_path, monkeypatch):
    """A selected test that names the function without calling it passes whatever the body is:
    no candidate is "passed" by it (not even a wrong one); they are ranked, UNVERIFIED, and the
    report says why. A test that calls it still decides."""
    project = _project(tmp_path / "p", with_tests=False)
    (project / "test_mod.py").write_text(
        "from mod import clamp\n\n\ndef test_exported():\n    assert clamp.__name__ == 'clamp'\n")
    _use(monkeypatch, ScriptedBackend([(WRONG, -0.1), (CORRECT, -0.5)]))
    config = build({"budget.metric": "samples", "budget.samples": 2,
                    "tests.python": sys.executable, "tests.stop_at_first_pass": False})
    report = solve(Request(project / "mod.py", "clamp"), config)
    assert report.tests == ("test_mod.py::test_exported",)
    assert report.status == "ranked" and "UNVERIFIED" in report.message, report.message
    assert "pass without calling clamp, so they cannot judge it" in report.message
    runs = [c.run for c in report.candidates]
    assert all(r.never_called and not r.passed for r in runs)
    assert "without calling the function" in runs[0].summary()
    (project / "test_mod.py").write_text(
        "from mod import clamp\n\n\ndef test_exported():\n    assert clamp.__name__ == 'clamp'"
        "\n\n\ndef test_inside():\n    assert clamp(5, 0, 10) == 5\n"
        "\n\ndef test_high():\n    assert clamp(11, 0, 10) == 10\n")
    report = solve(Request(project / "mod.py", "clamp"), config)
    assert (report.status, report.selected) == ("passed", 1), report.message
    assert not any(c.run.never_called for c in report.candidates)
