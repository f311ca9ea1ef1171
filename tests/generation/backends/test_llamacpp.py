"""The llama.cpp backend with real weights (SmolLM2-135M for speed, Qwen 0.5B for FIM)."""

import math

import pytest
from budgetpass.generation.backends import open_llamacpp
from budgetpass.generation.prompts import template_for
from budgetpass.generation.types import SamplingParams

pytestmark = pytest.mark.slow

PROMPT = "def add(a, b):\n    return"


def test_k_candidates_with_logprobs_are_reproducible(smol_path):
    model = open_llamacpp(smol_path)
    params = SamplingParams(temperature=0.8, max_tokens=24, seed=7)
    first = model.generate(PROMPT, 4, params)
    again = model.generate(PROMPT, 4, params)
    assert [c.text for c in first.completions] == [c.text for c in again.completions]
    assert len(first.completions) == 4 and len({c.text for c in first.completions}) > 1
    for c in first.completions:
        assert len(c.logprobs) == len(c.token_ids) > 0
        assert all(lp <= 0 and math.isfinite(lp) for lp in c.logprobs)
    other_seed = model.generate(PROMPT, 4, SamplingParams(temperature=0.8, max_tokens=24, seed=8))
    assert [c.text for c in other_seed.completions] != [c.text for c in first.completions]


def test_max_tokens_and_stop_sequences(smol_path):
    model = open_llamacpp(smol_path)
    capped = model.generate(PROMPT, 2, SamplingParams(max_tokens=3, seed=1, temperature=0))
    assert all(len(c.token_ids) <= 3 for c in capped.completions)
    assert any(c.finish_reason == "length" for c in capped.completions)
    stopped = model.generate("1, 2, 3, 4,", 1, SamplingParams(temperature=0, max_tokens=40,
                                                                stop=(" 7",)))
    assert " 7" not in stopped.completions[0].text and stopped.completions[0].finish_reason == "stop"


def test_greedy_is_the_same_for_every_sequence(smol_path):
    model = open_llamacpp(smol_path)
    result = model.generate(PROMPT, 3, SamplingParams(temperature=0, max_tokens=16))
    assert len({c.text for c in result.completions}) == 1


def test_cancel_stops_generation(smol_path):
    model = open_llamacpp(smol_path)
    result = model.generate(PROMPT, 2, SamplingParams(max_tokens=200), should_stop=lambda: True)
    assert all(c.finish_reason == "cancelled" for c in result.completions)


def test_qwen_fim_markers_are_single_special_tokens(qwen_path):
    model = open_llamacpp(qwen_path)
    assert template_for(model).name == "qwen2.5-coder"
    for marker in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"):
        assert len(model.tokenize(marker)) == 1
    assert len(model.tokenize("<|fim_prefix|>", special=False)) > 1


def test_smollm_has_no_fim_and_gets_the_plain_template(smol_path):
    assert template_for(open_llamacpp(smol_path)).name == "plain"


def test_a_prompt_sharing_the_previous_ones_start_reuses_it_with_the_same_result(smol_path, tmp_path):
    from budgetpass.generation.backends.llamacpp import LlamaCppModel

    params = SamplingParams(temperature=0, max_tokens=12)
    base = "def fibonacci(n):\n    \"\"\"The n-th Fibonacci number.\"\"\"\n" * 20
    warm = open_llamacpp(smol_path)
    warm.generate(base + "    if n < 2:", 3, params)  # leaves other sequences and tokens behind
    reused = warm.generate(base + "    if n <= 1:", 1, params)
    fresh = LlamaCppModel(smol_path).generate(base + "    if n <= 1:", 1, params)
    assert reused.completions[0].text == fresh.completions[0].text
    assert reused.prompt_seconds < fresh.prompt_seconds


def test_each_candidate_is_announced_the_step_it_finishes(smol_path):
    model = open_llamacpp(smol_path)
    params = SamplingParams(temperature=1.0, max_tokens=24, seed=3, stop=(".",))
    announced, tokens_then = [], []
    counted = []
    result = model.generate("The weather today is", 6, params, on_token=counted.append,
                            on_complete=lambda c: (announced.append(c),
                                                   tokens_then.append(counted[-1] if counted else 0)))
    by_index = {c.index: c for c in result.completions}
    assert sorted(c.index for c in announced) == list(range(6)), "each candidate once"
    assert all(c == by_index[c.index] for c in announced), "the same candidate the result holds"
    lengths = [len(c.token_ids) for c in announced]
    # Shorter candidates finish (and are announced) first; one that ends on an end-of-generation
    # token has that token left out of its length, hence the slack of one.
    assert all(a <= b + 1 for i, a in enumerate(lengths) for b in lengths[i:]), lengths
    assert len(set(lengths)) > 1 and tokens_then[0] < counted[-1], \
        "the first one is announced while others still decode"


def test_cancelled_candidates_are_not_announced(smol_path):
    model = open_llamacpp(smol_path)
    announced = []
    steps = []
    result = model.generate("x =", 3, SamplingParams(max_tokens=200, seed=1, ignore_eos=True),
                            on_token=steps.append, should_stop=lambda: len(steps) > 3,
                            on_complete=announced.append)
    assert all(c.finish_reason == "cancelled" for c in result.completions) and announced == []


def test_score_gives_the_log_probabilities_generation_saw(smol_path):
    """Scoring a greedy continuation after its prompt reproduces the per-token log-probabilities
    the sampler recorded; a continuation the model finds unlikely scores lower; the model still
    generates as before afterwards (its prompt cache was reset)."""
    model = open_llamacpp(smol_path)
    params = SamplingParams(temperature=0, max_tokens=12)
    before = model.generate(PROMPT, 1, params).completions[0]
    scored = model.score(PROMPT, before.text)
    assert len(scored) == len(model.tokenize(before.text, special=False))
    if model.tokenize(PROMPT + before.text) == model.tokenize(PROMPT) + list(before.token_ids):
        assert scored == pytest.approx(list(before.logprobs), abs=2e-3)
    odd = model.score(PROMPT, " zebra zebra zebra")
    assert sum(odd) / len(odd) < sum(scored) / len(scored)
    assert model.score(PROMPT, "") == []
    after = model.generate(PROMPT, 1, params).completions[0]
    assert after.text == before.text
