"""The vectorised sampler against a plain full-vocabulary reference (pure numpy, fast)."""

import numpy as np
import pytest
from budgetpass.generation.backends.sampler import CANDIDATE_POOL, sample_rows, sample_token
from budgetpass.generation.types import SamplingParams


def reference(logits, params, rng):
    """Whole-vocabulary softmax, sort, top-k pool, top-p: slow but obviously right."""
    logits = logits.astype(np.float64)
    log_probs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
    if params.temperature == 0:
        token = int(logits.argmax())
        return token, float(log_probs[token])
    scaled = (logits - logits.max()) / params.temperature
    probs = np.exp(scaled) / np.exp(scaled).sum()
    order = np.argsort(-probs, kind="stable")[: min(params.top_k or CANDIDATE_POOL, CANDIDATE_POOL)]
    kept = probs[order]
    if params.top_p < 1:
        kept = kept[: int(np.searchsorted(np.cumsum(kept), params.top_p) + 1)]
    kept = kept / kept.sum()
    token = int(order[rng.choice(len(kept), p=kept)])
    return token, float(log_probs[token])


def fake_rows(n, vocab=151_936, spread=3.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = (rng.standard_normal((n, vocab)) * spread).astype(np.float32)
    rows[:, :20] += np.linspace(14, 4, 20, dtype=np.float32)  # a few likely tokens, like a LM
    return rows


@pytest.mark.parametrize("params", [SamplingParams(), SamplingParams(temperature=1.0, top_p=1.0),
                                    SamplingParams(temperature=0.4, top_p=0.9),
                                    SamplingParams(temperature=1.3, top_k=5),
                                    SamplingParams(temperature=0)])
@pytest.mark.parametrize("spread", [1.0, 3.0])
def test_same_tokens_and_logprobs_as_the_full_vocabulary_reference(params, spread):
    rows = fake_rows(6, spread=spread)
    got = sample_rows(rows, params, [np.random.default_rng([1, i]) for i in range(6)])
    want = [reference(rows[i], params, np.random.default_rng([1, i])) for i in range(6)]
    assert [t for t, _ in got] == [t for t, _ in want]
    np.testing.assert_allclose([lp for _, lp in got], [lp for _, lp in want], atol=1e-4)


def test_sample_token_is_one_row_of_sample_rows():
    row = fake_rows(1)[0]
    params = SamplingParams(seed=3)
    assert sample_token(row, params, np.random.default_rng(5)) == \
        sample_rows(row[None], params, [np.random.default_rng(5)])[0]


def test_sampling_follows_the_distribution():
    rows = np.full((1, 1000), -20.0, dtype=np.float32)
    rows[0, [3, 7]] = [np.log(0.75), np.log(0.25)]
    rng = np.random.default_rng(0)
    draws = [sample_rows(rows, SamplingParams(temperature=1.0, top_p=1.0), [rng])[0][0]
             for _ in range(2000)]
    assert set(draws) <= {3, 7}
    assert 0.70 < draws.count(3) / len(draws) < 0.80
