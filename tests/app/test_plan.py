"""The one sampling plan: one batch of k, or anytime batches until seconds or samples run out."""

import pytest
from budgetpass.app.plan import ANYTIME_BATCHES, plan_sampling
from budgetpass.app.report import busy_seconds, overlap_seconds
from budgetpass.generation.budget import K_MAX


def test_one_batch_unless_anytime():
    plan = plan_sampling(6, has_tests=True)
    assert (plan.batch_size, plan.max_samples, plan.max_seconds, plan.anytime) == (6, 6, None, False)


def test_anytime_batches_of_k_until_seconds_or_samples():
    timed = plan_sampling(6, True, anytime=True, seconds=10)
    assert (timed.batch_size, timed.max_samples, timed.max_seconds) == (6, K_MAX, 10)
    counted = plan_sampling(6, True, anytime=True)
    assert (counted.max_samples, counted.max_seconds) == (ANYTIME_BATCHES * 6, None)
    custom = plan_sampling(6, True, anytime=True, max_samples=5, batch_size=2)
    assert (custom.batch_size, custom.max_samples) == (2, 5)
    small_cap = plan_sampling(6, True, anytime=True, max_samples=3)
    assert small_cap.batch_size == 3
    time_budget = plan_sampling(6, True, anytime=True, budget_seconds=4.5)
    assert time_budget.max_seconds == 4.5, "a time budget's seconds bound anytime by default"


def test_anytime_without_tests_draws_one_batch_and_says_why():
    plan = plan_sampling(6, has_tests=False, anytime=True, seconds=10)
    assert (plan.max_samples, plan.max_seconds) == (6, None) and "no tests" in plan.note


def test_busy_and_overlap_seconds():
    assert busy_seconds([]) == 0
    assert busy_seconds([(0, 2), (1, 3), (5, 6)]) == pytest.approx(4)
    assert busy_seconds([(0, 10), (2, 3)]) == pytest.approx(10)
    decode, tests = [(0, 4)], [(1, 2), (3, 5), (6, 7)]
    assert overlap_seconds(decode, tests) == pytest.approx(2)
    assert overlap_seconds([(0, 1)], [(2, 3)]) == 0
