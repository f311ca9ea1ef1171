"""Estimators and rankers of the reallocation bench, against brute force (pure logic, fast)."""

import itertools
import math
from dataclasses import dataclass

import pytest
from budgetpass.bench import metrics, rankers


def brute_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(correct, k))
    return sum(any(s) for s in subsets) / len(subsets)


def brute_rank_score(correct_in_rank_order: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct_in_rank_order)), k))
    return sum(correct_in_rank_order[min(s)] for s in subsets) / len(subsets)


@pytest.mark.parametrize("pattern", [[0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 1, 0, 1, 0],
                                     [1, 1, 1], [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]])
def test_pass_at_k_and_rank_score_match_enumeration(pattern):
    correct = [bool(x) for x in pattern]
    for k in range(1, len(correct) + 1):
        assert math.isclose(metrics.pass_at_k(len(correct), sum(correct), k),
                            brute_pass_at_k(correct, k))
        assert math.isclose(metrics.rank_score_at_k(correct, k), brute_rank_score(correct, k))
    # rank-score@1 is the mean (random pick); @n is the top-ranked sample; tested >= ranked
    assert math.isclose(metrics.rank_score_at_k(correct, 1), sum(correct) / len(correct))
    assert metrics.rank_score_at_k(correct, len(correct)) == float(correct[0])


def test_estimators_reject_k_outside_the_samples():
    with pytest.raises(ValueError):
        metrics.pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        metrics.rank_score_at_k([True], 0)


def test_time_matched_k_from_batched_timings():
    # two tasks; small: 1 s alone, 4 s for a batch of 10; large: 2 s alone, 5 s for a batch of 4
    small = [(1.0, 4.0), (1.0, 4.0)]
    large = [(2.0, 5.0), (2.0, 5.0)]
    assert metrics.fsum_seconds(small, 10, 1) == 2.0
    assert metrics.fsum_seconds(small, 10, 10) == 8.0
    budget = metrics.fsum_seconds(large, 4, 1)  # 4 s
    k = metrics.largest_k_within(lambda k: metrics.fsum_seconds(small, 10, k), budget)
    assert k == 4  # suite time 2 + 6 (k - 1) / 9 <= 4 s  <=>  k <= 4
    assert metrics.fsum_seconds(small, 10, k) <= budget < metrics.fsum_seconds(small, 10, k + 1)


@dataclass
class FakeSample:
    index: int
    body: str
    mean_logprob: float
    usable: bool
    outputs: list | None
    wants: tuple = ("1", "2")  # the task's two probe inputs with expected outputs
    reviewer: float | None = None


def test_rankers_order():
    samples = [
        FakeSample(0, "a", -0.1, False, None),          # best log-prob, does not parse
        FakeSample(1, "bb", -0.5, True, ["1", "5"]),
        FakeSample(2, "cc", -0.9, True, ["1", "2"]),    # reproduces both examples
        FakeSample(3, "dd", -0.7, True, ["1", "5"]),
        FakeSample(4, "ee", -0.6, True, ["7", "8"]),
    ]
    order = lambda name: [s.index for s in rankers.RANKERS[name].order(samples)]
    assert order("mean_logprob") == [1, 4, 3, 2, 0]
    assert order("doctest") == [2, 1, 3, 4, 0]
    assert order("execution_agreement") == [1, 3, 2, 4, 0]  # 1 and 3 agree on outputs
    assert order("cluster")[:2] == [1, 3]
    assert order("combined")[:3] == [2, 1, 3]  # examples first, then agreement
    with pytest.raises(ValueError, match="unknown ranker"):
        rankers.choose(["nope"])


def test_subset_pick_score_matches_rank_score_for_a_fixed_order():
    correct = [True, False, False, True, False]
    samples = list(range(5))  # the ranker picks the lowest index of a subset
    for k in range(1, 6):
        assert metrics.subset_pick_score(samples, k, lambda s: correct[min(s)]) == pytest.approx(
            metrics.rank_score_at_k(correct, k))
