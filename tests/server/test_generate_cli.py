"""`budgetpass generate` end to end with the real Qwen2.5-Coder 0.5B model."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from budgetpass.generation.source import locate_function, splice_body

from tests.conftest import EXAMPLE, double_project, tree_digest

BUDGETPASS = [sys.executable, "-m", "budgetpass.server.cli"]


def generate(*args, cwd=None, timeout=600, env=None):
    proc = subprocess.run([*BUDGETPASS, "generate", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)
    return proc


def passes_outside_the_tool(project: Path, rel_file: str, function: str, body: str, tests) -> bool:
    """Splice the body into a fresh copy and run plain pytest there, no budgetpass involved."""
    copy = project.parent / (project.name + "-check")
    shutil.copytree(project, copy)
    target = copy / rel_file
    text = target.read_text()
    target.write_text(splice_body(text, locate_function(text, function), body))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=copy, capture_output=True, text=True, timeout=120)
    shutil.rmtree(copy)
    return proc.returncode == 0


@pytest.mark.slow
def test_example_project_function_passes(qwen_path, tmp_path):
    project = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, project)
    before = tree_digest(project)
    proc = generate(project / "textkit/text.py::reading_time", "--calls", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "passed"
    assert report["budget"] == {**report["budget"], "metric": "flops",
                                "reference": "qwen2.5-coder-1.5b", "samples": 12}
    assert len(report["candidates"]) == 12 and report["selected"] in report["passing"]
    assert report["tests"] == [f"tests/test_text.py::{t}" for t in (
        "test_reading_time_rounds_up", "test_reading_time_short_text", "test_reading_time_empty")]
    assert tree_digest(project) == before, "the project changed without --write"
    assert passes_outside_the_tool(project, "textkit/text.py", "reading_time",
                                   report["selected_body"], report["tests"])


SHOP = EXAMPLE.parent / "shop"  # one stub, two tests


@pytest.mark.slow
def test_temporary_project_passes_and_write_changes_only_the_body(qwen_path, tmp_path):
    project = tmp_path / "shop"
    shutil.copytree(SHOP, project)
    original = (SHOP / "shop" / "prices.py").read_text()
    before = tree_digest(project)
    proc = generate(project / "shop/prices.py::apply_discount", "--calls", "4", "--json", "--write")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "passed" and report["written"] is True
    assert report["tests"] == ["tests/test_prices.py::test_ten_percent",
                               "tests/test_prices.py::test_rounding"]
    after = tree_digest(project)
    assert {k for k in after if after[k] != before.get(k)} == {"shop/prices.py"}
    assert set(after) == set(before)
    written = (project / "shop" / "prices.py").read_text()
    assert written == splice_body(original, locate_function(original, "apply_discount"),
                                  report["selected_body"])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.slow
def test_function_without_tests_is_ranked_by_its_docstring_example(qwen_path, tmp_path):
    """`make demo`'s `initials` (no tests; the docstring says 'ada lovelace' -> 'AL' in prose):
    the default ranker picks a body that does that, and says it is unverified and why."""
    project = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, project)
    proc = generate(project / "textkit/text.py::initials", "--calls", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "ranked" and report["tests"] == [] and report["passing"] == []
    assert "UNVERIFIED" in report["message"] and "by combined" in report["message"]
    assert "docstring example" in report["message"]
    signals = report["rankings"]["combined"]["signals"]
    assert signals["examples"][str(report["selected"])] == 1.0
    # the selected body, spliced into a copy of the project, run outside the tool
    copy = tmp_path / "check"
    shutil.copytree(project, copy)
    target = copy / "textkit" / "text.py"
    text = target.read_text()
    target.write_text(splice_body(text, locate_function(text, "initials"), report["selected_body"]))
    run = subprocess.run([sys.executable, "-c", "from textkit.text import initials; "
                          "print(repr(initials('ada lovelace')))"], cwd=copy, capture_output=True,
                         text=True, timeout=60)
    assert run.stdout.strip() == "'AL'", (report["selected_body"], run.stderr)


# --- bad input ----------------------------------------------------------------------------


@pytest.fixture
def small_project(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "setup.py").write_text("")
    (project / "mod.py").write_text("def f(x):\n    pass\n")
    return project


@pytest.mark.parametrize("target, message", [
    ("missing.py::f", "no such file"),
    ("mod.py::nope", "no function named 'nope'; functions in the file: f"),
    ("mod.py", "PATH::FUNCTION"),
])
def test_bad_targets_exit_2_with_a_clear_message(small_project, target, message):
    before = tree_digest(small_project)
    proc = generate(small_project / target)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert tree_digest(small_project) == before


def test_syntax_error_in_the_file(small_project):
    (small_project / "mod.py").write_text("def f(x:\n    pass\n")
    proc = generate(f"{small_project}/mod.py::f")
    assert proc.returncode == 2 and "syntax error" in proc.stderr and "mod.py:1" in proc.stderr


def test_unknown_model_is_a_clear_error(small_project):
    proc = generate(f"{small_project}/mod.py::f", "--model", "gpt-17")
    assert proc.returncode == 2 and "unknown model 'gpt-17'" in proc.stderr


def test_invalid_budget_is_a_clear_error(small_project):
    proc = generate(f"{small_project}/mod.py::f", "--calls", "0")
    assert proc.returncode == 2, proc.stderr
    assert "budget.calls (--calls): expected a positive number" in proc.stderr


def test_a_missing_sandbox_is_a_clear_error_not_a_traceback(small_project):
    """``sandbox.probe`` raises RuntimeError for a sandbox that is not there: the user gets the
    reason and the fix, exit 2."""
    proc = generate(f"{small_project}/mod.py::f", "--sandbox", "bwrap",
                    env={"PATH": str(small_project), "HOME": str(small_project)})
    assert proc.returncode == 2, proc.stderr
    assert "sandbox 'bwrap' was requested but bwrap is not installed" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (("--seconds", "0"), "budget.seconds (--seconds): expected a positive number"),
    (("--max-samples", "0"), "budget.max_samples (--max-samples): expected a positive number"),
    (("--anytime", "--batch-size", "0"),
     "budget.batch_size (--batch-size): expected a positive number"),
])
def test_empty_anytime_budgets_are_clear_errors(small_project, args, message):
    proc = generate(f"{small_project}/mod.py::f", *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


@pytest.mark.slow
def test_seconds_budget_keeps_sampling_batches_and_reports_what_it_spent(qwen_path, tmp_path):
    project = double_project(tmp_path / "never",
                             "from mod import double\n\n\ndef test_double():\n"
                             "    assert double(2) == 5\n")
    proc = generate(f"{project}/mod.py::double", "--budget-metric", "samples", "--samples", "2",
                    "--max-tokens", "48", "--seconds", "4")
    assert proc.returncode == 1, proc.stderr
    assert "budget used: " in proc.stdout and "s of 4 s" in proc.stdout, proc.stdout
    batches = int(proc.stdout.split(" batches, ")[0].rsplit(" ", 1)[-1])
    assert batches >= 2, proc.stdout


@pytest.mark.slow
def test_hanging_test_suite_fails_within_the_timeout(qwen_path, tmp_path):
    project = double_project(tmp_path / "hang",
                             "import time\nfrom mod import double\n\n\ndef test_double():\n"
                             "    time.sleep(3600)\n    assert double(2) == 4\n")
    before = tree_digest(project)
    proc = generate(f"{project}/mod.py::double", "--budget-metric", "samples", "--samples", "2",
                    "--test-timeout", "3", "--json", "--write")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "failed" and report["written"] is False
    assert all(c["outcomes"][0]["outcome"] == "timeout" for c in report["candidates"] if c["tested"])
    assert report["seconds"] < 60
    assert tree_digest(project) == before
