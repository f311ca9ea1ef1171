"""The pipeline's pure rules: test order, stop at the first pass, anytime plans, overlap sums."""

import pytest
from budgetpass.generation.budget import K_MAX
from budgetpass.verify.job import JobSettings
from budgetpass.verify.pipeline import (
    ANYTIME_BATCHES,
    TestSchedule,
    busy_seconds,
    overlap_seconds,
    plan_sampling,
)


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


@pytest.mark.parametrize("bad", [{"seconds": 0}, {"seconds": -1.0}, {"max_samples": 0},
                                 {"batch_size": 0}])
def test_job_settings_refuse_empty_budgets(bad):
    with pytest.raises(ValueError, match="must be"):
        JobSettings(**bad)


def test_busy_and_overlap_seconds():
    assert busy_seconds([]) == 0
    assert busy_seconds([(0, 2), (1, 3), (5, 6)]) == pytest.approx(4)
    assert busy_seconds([(0, 10), (2, 3)]) == pytest.approx(10)
    decode, tests = [(0, 4)], [(1, 2), (3, 5), (6, 7)]
    assert overlap_seconds(decode, tests) == pytest.approx(2)
    assert overlap_seconds([(0, 1)], [(2, 3)]) == 0
