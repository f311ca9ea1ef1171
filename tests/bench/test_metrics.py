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
    doctest_results: tuple | None


def test_rankers_order():
    samples = [
        FakeSample(0, "a", -0.1, False, None),                      # best log-prob, does not parse
        FakeSample(1, "bb", -0.5, True, ((True, "1"), (False, "2"))),
        FakeSample(2, "cc", -0.9, True, ((True, "1"), (True, "3"))),  # passes both examples
        FakeSample(3, "dd", -0.7, True, ((True, "1"), (False, "2"))),
    ]
    order = lambda name: [s.index for s in rankers.RANKERS[name].order(samples)]
    assert order("mean_logprob") == [1, 3, 2, 0]
    assert order("doctest") == [2, 1, 3, 0]
    assert order("execution_agreement") == [1, 3, 2, 0]  # 1 and 3 agree on outputs
    with pytest.raises(ValueError, match="unknown ranker"):
        rankers.choose(["nope"])
