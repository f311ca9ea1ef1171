"""Budgets by flops, by time (calibrated on this machine) and by samples; anytime sampling."""

import math

import pytest
from budgetpass.app.plan import anytime_batches
from budgetpass.generation import calibration, models
from budgetpass.generation.backends import open_llamacpp
from budgetpass.generation.budget import BudgetRequest, plan_budget
from budgetpass.generation.calibration import ModelSpeed
from budgetpass.generation.types import SamplingParams

from tests.conftest import cached_model

SMALL = models.REGISTRY["qwen2.5-coder-0.5b"].parameters
LARGE = models.REGISTRY["qwen2.5-coder-1.5b"].parameters


def speed(name, prefill, steps):
    return ModelSpeed(name, "0" * 64, "llama.cpp", 2, prefill, steps, "2026-01-01T00:00:00Z", "test")


def test_step_time_interpolates_and_extrapolates():
    s = speed("m", 500.0, {1: 0.016, 4: 0.040, 8: 0.070})
    assert s.step_seconds(1) == pytest.approx(0.016)
    assert s.step_seconds(6) == pytest.approx(0.055)
    assert s.step_seconds(16) == pytest.approx(0.130)  # last slope, 7.5 ms per sequence
    assert s.seconds(500, 100, 8) == pytest.approx(1.0 + 7.0)


def test_time_budget_counts_candidates_that_fit_the_reference_time():
    small = speed("small", 1000.0, {1: 0.010, 8: 0.045})
    large = speed("large", 300.0, {1: 0.040, 8: 0.150})
    budget = plan_budget(BudgetRequest(metric="time", calls=1), SMALL, LARGE, small, large,
                         prompt_tokens=300, new_tokens=100)
    reference_seconds = 1.0 + 4.0
    assert budget.seconds == pytest.approx(reference_seconds)
    assert budget.calibrated is True
    k = budget.samples
    assert small.seconds(300, 100, k) <= reference_seconds < small.seconds(300, 100, k + 1)
    assert "calibrated" in budget.derivation and f"k = {k}" in budget.derivation


def test_uncalibrated_time_budget_falls_back_to_flops_and_says_so():
    budget = plan_budget(BudgetRequest(metric="time", calls=1), SMALL, LARGE)
    assert budget.samples == 3 and budget.calibrated is False
    assert budget.derivation.startswith("UNCALIBRATED") and "budgetpass calibrate" in budget.derivation


@pytest.mark.slow
def test_budgets_for_05b_vs_15b_by_flops_time_and_samples(qwen_path, tmp_path, monkeypatch):
    small_path, large_path = qwen_path, cached_model("qwen2.5-coder-1.5b")
    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path / "models")  # scratch calibration
    small = calibration.calibrate(open_llamacpp(small_path), "qwen2.5-coder-0.5b", "a" * 64,
                                  ks=(1, 4), prompt_tokens=128, new_tokens=12, reps=1)
    large = calibration.calibrate(open_llamacpp(large_path), "qwen2.5-coder-1.5b", "b" * 64,
                                  ks=(1, 4), prompt_tokens=128, new_tokens=12, reps=1)
    calibration.save(small)
    assert calibration.lookup("a" * 64, "llama.cpp", small.threads) == small
    # (Which model is faster is a benchmark's claim, bench/sampling.py: on a shared CI machine a
    # single repetition of either can be slowed several times over.)
    assert 0 < small.step_seconds(1) < math.inf and 0 < large.step_seconds(1) < math.inf
    by_flops = plan_budget(BudgetRequest(metric="flops"), SMALL, LARGE)
    by_time = plan_budget(BudgetRequest(metric="time"), SMALL, LARGE, small, large)
    by_samples = plan_budget(BudgetRequest(metric="samples", samples=5), SMALL, LARGE)
    assert by_flops.samples == 3
    assert by_samples.samples == 5
    assert by_time.calibrated and by_time.samples >= 1
    # k candidates fit the reference's time, unless k was raised to the minimum of one
    assert by_time.samples == 1 or small.seconds(400, 96, by_time.samples) <= by_time.seconds
    print(f"\nk on this machine: flops {by_flops.samples}, time {by_time.samples} "
          f"({by_time.derivation}), samples {by_samples.samples}")


@pytest.mark.slow
def test_anytime_stops_when_the_consumer_has_a_pass_or_the_budget_is_spent(smol_path):
    model = open_llamacpp(smol_path)
    params = SamplingParams(max_tokens=8, seed=2)
    seen = []
    for batch in anytime_batches(model, "def add(a, b):\n    return", params, max_samples=12,
                                 batch_size=4):
        seen.append(batch)
        if batch.number == 1:  # pretend candidate 5..8 passed
            break
    assert [b.number for b in seen] == [0, 1]
    assert [c.index for b in seen for c in b.completions] == list(range(8))
    assert seen[-1].usage.used_samples == 8 and seen[-1].usage.given_samples == 12
    everything = list(anytime_batches(model, "x = ", params, max_samples=6, batch_size=4))
    assert [len(b.completions) for b in everything] == [4, 2] and everything[-1].last
    timed = list(anytime_batches(model, "x = ", params, max_samples=1000, batch_size=2,
                                 max_seconds=0.5))
    assert timed[-1].usage.used_seconds <= 0.5 + timed[-1].result.seconds
    assert timed[-1].usage.used_samples < 1000


def test_time_budget_is_capped_at_twice_the_largest_calibrated_batch():
    small = speed("small", 1000.0, {1: 0.010, 8: 0.012})  # batching nearly free: a guess beyond 8
    large = speed("large", 100.0, {1: 0.100})
    budget = plan_budget(BudgetRequest(metric="time", calls=10), SMALL, LARGE, small, large)
    assert budget.samples == 16 and "capped at 16" in budget.derivation


@pytest.mark.slow
def test_anytime_announces_candidates_with_their_index_across_batches(smol_path):
    model = open_llamacpp(smol_path)
    announced, tokens = [], []
    batches = list(anytime_batches(model, "x = ", SamplingParams(max_tokens=6, seed=4),
                                   max_samples=5, batch_size=2, on_token=tokens.append,
                                   on_complete=announced.append))
    assert sorted(c.index for c in announced) == list(range(5))
    assert {c.index: c.text for c in announced} == {
        c.index: c.text for b in batches for c in b.completions}
    assert tokens == sorted(tokens) and tokens[-1] == batches[-1].usage.generated_tokens


def test_remote_calibrations_are_found_by_name_and_endpoint(tmp_path, monkeypatch):
    """`budgetpass calibrate --endpoint` files speeds under endpoint and served model; a job on
    backend openai with metric time takes the small model's at its endpoint and the reference's
    wherever it was measured."""
    from budgetpass.app import plan
    from budgetpass.app.config import Config

    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path / "models")

    def remote(name, url, served, step):
        return ModelSpeed(name, calibration.endpoint_id(url, served), "openai", 0, 5000.0,
                          {1: step, 8: step * 1.2}, "2026-01-01T00:00:00Z", url)

    small = remote("qwen2.5-coder-0.5b", "http://gpu:8000", "qwen-small", 0.004)
    large = remote("32B", "http://gpu:8001/", "big", 0.03)
    for speed_ in (small, large):
        calibration.save(speed_)
    assert calibration.lookup_served("qwen2.5-coder-0.5b", "http://gpu:8000/") == small
    assert calibration.lookup_served("qwen-small") == small  # the served id works too
    assert calibration.lookup_served("qwen2.5-coder-0.5b", "http://gpu:9999") is None
    assert calibration.lookup_served("32B") == large
    config = Config().evolve(**{"model.name": "qwen2.5-coder-0.5b", "model.backend": "openai",
                                "model.endpoint": "http://gpu:8000", "budget.metric": "time",
                                "budget.reference": "32B"})
    speeds = plan._calibrated_speeds(config.budget.request, config.model.spec)
    assert speeds == {"small_speed": small, "reference_speed": large}
    budget = plan.plan(config, small_parameters=SMALL)
    # A GPU batches k for about one step's time: k reaches the cap (twice the largest k measured).
    assert budget.calibrated and budget.samples == 16 and "capped" in budget.derivation
