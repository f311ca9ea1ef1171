"""Sampling from logits for the in-process backend: temperature, top-k/top-p and each token's
log-probability, for many sequences at once, reproducible for a given seed per sequence."""

from __future__ import annotations

import numpy as np

from ..types import SamplingParams

CANDIDATE_POOL = 128  # sampling considers the most likely tokens only; the rest carry ~no mass
POOL_REACH = 12.0  # x temperature: nats below the best logit where the sampling pool is sought


def sample_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> tuple[int, float]:
    """(token, the model's log-probability of it at temperature 1) for one row of logits."""
    return sample_rows(logits[None, :], params, [rng])[0]


def _pool(shifted_row: np.ndarray, wanted: int, reach: float) -> np.ndarray:
    """Ids of a small superset of the ``wanted`` most likely tokens (all within ``reach`` nats
    of the best if fewer qualify). Counting above a threshold is ~50x cheaper than a partition
    of the whole row; halving the threshold keeps the superset small."""
    low = -reach
    while True:
        count = int(np.count_nonzero(shifted_row >= low / 2)) if low < -0.5 else 0
        if count < wanted:
            break
        low /= 2
    return np.flatnonzero(shifted_row >= low)


def sample_rows(rows: np.ndarray, params: SamplingParams,
                rngs: list) -> list[tuple[int, float]]:
    """One (token, log-probability at T = 1) per row of logits, row i drawn with ``rngs[i]``.

    Full-vocabulary work (152k logits per row for Qwen) is done once for all rows in float32:
    the max, the normalisers at T = 1 (log-probabilities) and at T (so top-p keeps its meaning
    relative to the whole vocabulary). The pool of the ``CANDIDATE_POOL`` most likely tokens is
    looked for only among tokens within ``POOL_REACH`` x T nats of the best (each one outside has
    < 1e-5 of the best token's probability), not by partitioning the whole row.
    """
    rows = np.asarray(rows, dtype=np.float32)
    tops = rows.max(axis=1)
    shifted = rows - tops[:, None]
    log_norms = tops.astype(np.float64) + np.log(np.exp(shifted).sum(axis=1, dtype=np.float64))
    temperature = params.temperature
    if temperature <= 0:
        tokens = shifted.argmax(axis=1)
        return [(int(t), float(rows[r, t]) - float(log_norms[r])) for r, t in enumerate(tokens)]
    if temperature == 1.0:
        totals = np.exp(log_norms - tops)
    else:
        totals = np.exp(shifted / np.float32(temperature)).sum(axis=1, dtype=np.float64)
    wanted = min(params.top_k or CANDIDATE_POOL, CANDIDATE_POOL)
    picks = []
    for r, rng in enumerate(rngs):
        ids = _pool(shifted[r], wanted, POOL_REACH * temperature)
        scaled = shifted[r, ids].astype(np.float64) / temperature
        if wanted < len(ids):
            keep = np.argpartition(-scaled, wanted - 1)[:wanted]
            ids, scaled = ids[keep], scaled[keep]
        order = np.argsort(-scaled, kind="stable")
        ids, probs = ids[order], np.exp(scaled[order]) / totals[r]
        if params.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(probs), params.top_p) + 1)
            ids, probs = ids[:keep], probs[:keep]
        probs = probs / probs.sum()
        token = int(ids[rng.choice(len(ids), p=probs)])
        picks.append((token, float(rows[r, token]) - float(log_norms[r])))
    return picks
