"""Repair rounds: after a batch without a pass, part of the next batch is asked to fix the closest
failed candidate. The candidates come from a scripted backend (what it returns is decided here, so
the round is certain); the prompts, the sandbox, the tests, the report are the product's."""

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from budgetpass.app import plan as planning
from budgetpass.app.config import build
from budgetpass.app.report import Cancelled
from budgetpass.app.solve import Request, Sampling, solve
from budgetpass.app.target import prompt
from budgetpass.generation.budget import Budget
from budgetpass.generation.prompts import ModelPromptInfo
from budgetpass.generation.types import Completion, GenerationResult
from budgetpass.server.cli_output import render_report

from tests.conftest import double_project

TESTS = ("from mod import double\n\n\ndef test_one():\n    assert double(1) == 2\n\n\n"
         "def test_three():\n    assert double(3) == 6\n")
WRONG = "    return x + 1\n"  # passes test_one only
RIGHT = "    return x * 2\n"
INFO = ModelPromptInfo("scripted")


class Scripted:
    """Answers every fresh prompt with WRONG; a prompt that asks for a repair with ``fix``.
    ``cancel``: set when a repair is asked (the user cancels while it decodes)."""

    def __init__(self, fix: str, cancel: threading.Event | None = None):
        self.fix, self.prompts, self.cancel = fix, [], cancel

    def generate(self, text, n, params, on_token=None, should_stop=None, on_complete=None):
        self.prompts.append((text, n))
        repair = "This body failed a test" in text
        body = self.fix if repair else WRONG
        reason = "stop"
        if repair and self.cancel is not None:
            self.cancel.set()
            reason = "cancelled"
        completions = tuple(Completion(i, body, (1,) * 3, (-0.1,) * 3, reason, 3)
                            for i in range(n))
        for c in completions:
            if on_complete and reason != "cancelled":
                on_complete(c)
        return GenerationResult(completions, 10, 0.01, 0.001)


def source(backend: Scripted):
    def make(config, target, at_cursor, has_tests, emit):
        made = prompt(target, INFO, config)
        plan = planning.plan_sampling(2, has_tests, anytime=True, max_samples=6)
        return Sampling(backend, made, config.sampling.params(stop=made.stops), plan,
                        Budget("samples", "none", 0, 0, 0.0, 2, "scripted"),
                        {"name": "scripted", "template": "plain"},
                        [], lambda hint: prompt(target, INFO, config, hint))
    return make


def settings(**extra):
    return build({"budget.anytime": True, "budget.seconds": None, "tests.sandbox": "auto",
                  **extra})


def test_a_batch_without_a_pass_is_followed_by_a_repair_that_passes(tmp_path: Path):
    project = double_project(tmp_path / "p", TESTS)
    backend = Scripted(RIGHT)
    events = []
    report = solve(Request(project / "mod.py", "double"), settings(), on_event=events.append,
                   source=source(backend))
    assert report.status == "passed", report.message
    # Batch 0: 2 fresh (both WRONG, one body, one test run). Batch 1: 1 repair + 1 fresh. (This
    # backend answers at once, so a further batch may start before the repair's verdict is in.)
    assert [n for _, n in backend.prompts][:3] == [2, 1, 1]
    repair_prompt = backend.prompts[1][0]
    assert "#     return x + 1" in repair_prompt  # the failed body
    assert "test_mod.py::test_three" in repair_prompt and "assert 4 == 6" in repair_prompt
    assert "This body failed a test" not in backend.prompts[2][0]  # the rest are fresh samples
    by_index = {c.index: c for c in report.candidates}
    assert by_index[2].repair_of == 0 and by_index[2].body == RIGHT and by_index[2].run.passed
    assert by_index[3].repair_of is None
    selected = by_index[report.selected]
    assert selected.repair_of is not None and selected.run.passed
    assert report.to_json()["candidates"][2]["repair_of"] == 0
    # Repairs are candidates like the others in the budget's accounting.
    drawn = sum(n for _, n in backend.prompts)
    assert report.usage.used_samples == drawn == len(report.candidates)
    assert report.usage.generated_tokens == 3 * drawn
    assert any(e.phase == "repair" and "fix candidate 1" in e.text for e in events)
    assert "candidate 3 (repair of 1): " in render_report(report)


@pytest.mark.parametrize("off", [{"budget.repair_share": 0}, {"tests.pipeline": False}])
def test_share_zero_or_no_pipelining_samples_fresh_only(tmp_path: Path, off):
    """Without pipelining no verdict comes before the sampling ends: nothing to repair."""
    project = double_project(tmp_path / "p", TESTS)
    backend = Scripted(RIGHT)
    report = solve(Request(project / "mod.py", "double"), settings(**off),
                   source=source(backend))
    assert report.status == "partial" and len(report.candidates) == 6
    assert all("This body failed a test" not in text for text, _ in backend.prompts)
    assert all(c.repair_of is None for c in report.candidates)


def test_a_job_cancelled_mid_repair_applies_nothing(tmp_path: Path):
    project = double_project(tmp_path / "p", TESTS)
    before = (project / "mod.py").read_text()
    cancel = threading.Event()
    backend = Scripted(RIGHT, cancel)  # the repair would pass, but it is cancelled
    with pytest.raises(Cancelled):
        solve(Request(project / "mod.py", "double", write=True), settings(),
              should_stop=cancel.is_set, source=source(backend))
    assert cancel.is_set() and (project / "mod.py").read_text() == before


def test_a_seconds_budget_shorter_than_the_prompt_says_so_and_still_answers(tmp_path: Path):
    project = double_project(tmp_path / "p", TESTS)

    class SlowPrompt(Scripted):
        def generate(self, *args, **kwargs):
            result = super().generate(*args, **kwargs)
            return GenerationResult(result.completions, 10, 0.5, 0.4)  # 0.4 s on the prompt

    def timed(config, target, at_cursor, has_tests, emit):
        made = source(SlowPrompt(RIGHT))(config, target, at_cursor, has_tests, emit)
        return replace(made, plan=planning.plan_sampling(2, has_tests, anytime=True,
                                                         seconds=0.05))

    report = solve(Request(project / "mod.py", "double"), settings(), source=timed)
    assert report.batches == 1 and len(report.candidates) == 2  # one batch, no hang, no crash
    assert any(w.startswith("budget too small for one candidate: evaluating the prompt alone "
                            "took 0.40 s of the 0.05 s budget") for w in report.warnings)


@pytest.mark.parametrize("broken", ["conftest", "test module"])
def test_tests_that_cannot_start_stop_the_job_and_say_why(tmp_path: Path, broken: str):
    """A conftest or a test module that does not import is the project's set-up, not the
    candidates': the first verdict ends the sampling, and the report says what pytest said (not
    'try a larger budget')."""
    project = double_project(tmp_path / "p", TESTS)
    if broken == "conftest":
        (project / "conftest.py").write_text(
            "raise ImportError('hypothesis is a required dependency to run the suite')\n")
        said = "hypothesis is a required dependency to run the suite"
    else:
        (project / "test_mod.py").write_text("import attr_not_installed\n" + TESTS)
        said = "ModuleNotFoundError: No module named 'attr_not_installed'"
    backend = Scripted(RIGHT)
    report = solve(Request(project / "mod.py", "double"), settings(), source=source(backend))
    assert report.status == "failed"
    assert "the project's tests did not start" in report.message, report.message
    assert said in report.message
    assert "larger budget" not in report.message
    assert len(backend.prompts) == 1  # no second batch: no candidate could have done better
    tested = [c for c in report.candidates if c.run is not None]
    assert tested and all(c.run.setup_failure for c in tested)


@pytest.mark.parametrize("show", [True, False])
def test_the_prompt_shows_how_the_selected_tests_call_the_function(tmp_path: Path, show: bool):
    """``prompt.show_tests``: the selected tests' lines that call it, as comments where the body
    starts (the tests are the specification); off, the prompt is the code alone."""
    project = double_project(tmp_path / "p", TESTS)
    backend = Scripted(RIGHT)
    report = solve(Request(project / "mod.py", "double"),
                   settings(**{"prompt.show_tests": show}), source=source(backend))
    assert report.status == "passed", report.message
    first = backend.prompts[0][0]  # the scripted model takes plain prompts: comments in the code
    shown = ("    # The project's tests call it like this:\n"
             "    #     assert double(1) == 2\n    #     assert double(3) == 6\n")
    assert (shown in first) is show, first


def test_tests_that_never_call_the_function_end_the_batches(tmp_path: Path):
    """Generate-until-pass stops after the batch whose verdicts say the selected tests pass
    without calling the function: no further batch could be judged by them; the answer is
    ranked, UNVERIFIED."""
    project = double_project(tmp_path / "p", "from mod import double\n\n\ndef test_named():\n"
                                             "    assert double.__name__ == 'double'\n")
    backend = Scripted(RIGHT)
    report = solve(Request(project / "mod.py", "double"), settings(), source=source(backend))
    assert len(backend.prompts) == 1, backend.prompts  # one batch of 2, no repair, no more
    assert report.status == "ranked" and "cannot judge it" in report.message, report.message
