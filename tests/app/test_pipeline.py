"""Testing while decoding, and generate-until-pass, with the real 0.5B model and the sandbox.

The timestamps come from the report (each candidate's decode end and test start) and from the
job's events, measured in one run: a test starting before the last candidate is decoded is
pipelining; candidates never decoded to the end after a pass are the cancelled decode.
"""

from pathlib import Path

import pytest
from budgetpass.app.config import Config, build
from budgetpass.app.solve import Request, solve

from tests.conftest import EXAMPLE

pytestmark = pytest.mark.slow

TEXT = EXAMPLE / "textkit" / "text.py"


def _settings(samples: int, **extra) -> Config:
    """k = ``samples``; ``extra`` by dotted name (an anytime budget without seconds: no time bound)."""
    return build({"budget.metric": "samples", "budget.samples": samples, "budget.seconds": None,
                  "sampling.max_tokens": 96, "sampling.seed": 0, **extra})


def _impossible_project(tmp_path: Path) -> Path:
    """Tests no body can pass: every candidate is decoded and tested, and fails."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "calc.py").write_text(
        'def add(a, b):\n    """Return the sum of a and b."""\n    raise NotImplementedError\n')
    (tmp_path / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 5\n")
    return tmp_path / "calc.py"


def test_candidates_are_tested_while_others_still_decode(qwen_path):
    events = []
    report = solve(Request(TEXT, "slugify"), _settings(6, **{"tests.stop_at_first_pass": False}),
                   on_event=events.append)
    decoded = [c for c in report.candidates if c.decoded]
    assert len(decoded) == 6, "without stop_at_first_pass every candidate is decoded"
    assert len({c.tokens for c in decoded}) > 1, "the candidates should differ in length"
    first_test = min(c.test_started_at for c in report.candidates if c.run is not None)
    last_decoded = max(c.decoded_at for c in decoded)
    assert first_test < last_decoded, "a test should start before the last candidate is decoded"
    phases = [e.phase for e in events]
    last_generate = len(phases) - 1 - phases[::-1].index("generate")
    assert "test" in phases[:last_generate], "test events should come between generate events"
    assert report.pipelined and report.overlap_seconds > 0
    assert report.overlap_seconds <= min(report.generation_seconds, report.testing_seconds) + 1e-6
    data = report.to_json()
    assert data["pipeline"]["tested"] and data["pipeline"]["not_decoded"] == []


def test_a_pass_cancels_the_rest_of_the_decode(qwen_path):
    report = solve(Request(TEXT, "chunk"), _settings(6))
    assert report.status == "passed", report.message
    not_decoded = [c for c in report.candidates if not c.decoded]
    assert not_decoded, "the longer candidates should have been cancelled by the pass"
    assert all(c.finish_reason == "cancelled" and c.run is None for c in not_decoded)
    assert "another candidate had passed" in not_decoded[0].problem
    passed_at = min(c.test_ended_at for c in report.candidates if c.run and c.run.passed)
    assert report.usage.used_seconds < passed_at + 1.0, "decoding should stop soon after the pass"
    used = report.to_json()["budget_used"]
    assert used["cancelled"] == len(not_decoded) and used["decoded"] == 6 - len(not_decoded)
    assert "not decoded to the end" in report.message


def test_sequential_mode_generates_everything_first(qwen_path):
    report = solve(Request(TEXT, "chunk"), _settings(4, **{"tests.pipeline": False}))
    assert report.status == "passed" and not report.pipelined and report.overlap_seconds == 0
    assert all(c.decoded for c in report.candidates)
    last_decoded = max(c.decoded_at for c in report.candidates)
    assert all(c.test_started_at >= last_decoded for c in report.candidates if c.run)


def test_anytime_stops_at_the_first_passing_batch(qwen_path):
    report = solve(Request(TEXT, "chunk"), _settings(2, **{"budget.anytime": True,
                                                               "budget.max_samples": 12}))
    assert report.status == "passed", report.message
    first_pass = min(c.index for c in report.candidates if c.run and c.run.passed)
    assert report.usage.used_samples < 12, "it should stop before spending the whole budget"
    assert report.batches <= first_pass // 2 + 2, "at most the passing batch and one cancelled"
    assert not any(c.run for c in report.candidates if c.index // 2 > first_pass // 2 + 1)
    data = report.to_json()
    assert data["budget_used"]["given_samples"] == 12
    assert data["budget_used"]["samples"] == report.usage.used_samples


def test_failing_everything_spends_the_whole_sample_budget(qwen_path, tmp_path):
    path = _impossible_project(tmp_path)
    report = solve(Request(path, "add"), _settings(2, **{
        "budget.anytime": True, "budget.max_samples": 6, "sampling.max_tokens": 48,
        "sampling.seed": 1}))
    assert report.status == "failed", report.message
    assert report.batches == 3 and len(report.candidates) == 6
    used = report.to_json()["budget_used"]
    assert (used["samples"], used["given_samples"]) == (6, 6)
    assert all(c.decoded for c in report.candidates)
    # Repair rounds (share 0.5 of a batch of 2): after each failed batch, the first candidate of
    # the next is the model's fix of a failed one, shown with its failing test's message.
    repairs = [c.index for c in report.candidates if c.repair_of is not None]
    assert repairs == [2, 4], [(c.index, c.repair_of) for c in report.candidates]
    assert all(report.candidates[i].repair_of < i for i in repairs)


def test_anytime_respects_a_seconds_budget(qwen_path, tmp_path):
    path = _impossible_project(tmp_path)
    # Three batches' worth of seconds, as long as a batch takes on this machine now (a loaded CI
    # machine takes several times a quiet one's).
    one = solve(Request(path, "add"), _settings(2, **{"sampling.max_tokens": 48,
                                                     "sampling.seed": 1}))
    seconds = round(3.5 * one.usage.used_seconds, 1)
    report = solve(Request(path, "add"), _settings(2, **{
        "budget.anytime": True, "budget.seconds": seconds, "sampling.max_tokens": 48,
        "sampling.seed": 1}))
    assert report.status == "failed", report.message
    usage = report.usage
    assert usage.given_seconds == seconds and report.batches >= 2
    # A batch starts only if the last one's duration says it fits; the budget is spent when the
    # next batch would not fit, so used time lies within one batch of the budget.
    batch = usage.used_seconds / report.batches
    assert seconds - 2 * batch <= usage.used_seconds <= seconds + 2 * batch, usage
    assert usage.used_samples == 2 * report.batches < usage.given_samples
    used = report.to_json()["budget_used"]
    assert used["given_seconds"] == seconds and used["seconds"] == pytest.approx(
        usage.used_seconds, abs=1e-3)
