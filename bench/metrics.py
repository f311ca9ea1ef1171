"""Estimators for the reallocation benchmark: pass@k, rank-score@k and budget-matched k.

All of them are exact rational formulas over stored per-sample outcomes (math.comb, math.fsum), so
re-scoring the same cache gives the same floats bit for bit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), for k <= n."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    if n - correct < k:
        return 1.0
    return 1.0 - math.comb(n - correct, k) / math.comb(n, k)


def rank_score_at_k(correct_in_rank_order: Sequence[bool], k: int) -> float:
    """Expected correctness of the top-ranked sample of a uniformly random k-subset.

    The paper's no-test metric. With the n samples sorted best first, the sample at position r
    (0-based) is the top of a random k-subset with probability C(n-1-r, k-1) / C(n, k).
    """
    n = len(correct_in_rank_order)
    if not 1 <= k <= n:
        raise ValueError(f"rank-score@k needs 1 <= k <= n, got k={k}, n={n}")
    total = math.comb(n, k)
    return math.fsum(math.comb(n - 1 - r, k - 1) / total
                     for r, ok in enumerate(correct_in_rank_order) if ok)


def subset_pick_score(items: Sequence, k: int, pick_correct) -> float:
    """Mean of ``pick_correct(subset)`` over every k-subset of ``items`` (in their order): the
    expected correctness of a pick made from k random samples with only those k in view."""
    n = len(items)
    if not 1 <= k <= n:
        raise ValueError(f"needs 1 <= k <= n, got k={k}, n={n}")
    return math.fsum(float(pick_correct(list(subset)))
                     for subset in itertools.combinations(items, k)) / math.comb(n, k)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def interpolated_batch_seconds(single: float, batch: float, batch_size: int, k: float) -> float:
    """Wall time of one batched request of k samples, between the measured k=1 and k=batch_size.

    Batched decoding costs grow sub-linearly in k here (compute-bound steps), so the straight line
    overestimates the middle: it errs against the small model, never for it.
    """
    if batch_size <= 1:
        return single * k
    return single + (batch - single) * (k - 1) / (batch_size - 1)


def largest_k_within(cost_of_k, budget: float, k_limit: int = 10_000) -> int:
    """Largest k in 1..k_limit with cost_of_k(k) <= budget (at least 1: the product never samples 0).

    cost_of_k must be non-decreasing in k."""
    best = 1
    for k in range(2, k_limit + 1):
        if cost_of_k(k) > budget + 1e-12:
            break
        best = k
    return best



def fsum(values) -> float:
    return math.fsum(values)


def fsum_seconds(pairs: Sequence[tuple[float, float]], batch_size: int, k: float) -> float:
    """Suite wall time of one batched k-sample request per task, from (k=1, k=batch) timings."""
    return math.fsum(interpolated_batch_seconds(single, batch, batch_size, k)
                     for single, batch in pairs)
