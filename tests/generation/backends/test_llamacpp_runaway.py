"""Runaway control in the llama.cpp batched loop, with real weights (SmolLM2-135M).

The prompt ends in a list of zeros; greedily the model goes on writing ", 0" forever, so a greedy
candidate is a runaway. Sampled (seed 2, T 0.9), two candidates loop and two close the list:
the loopers are cut and the others come out exactly as without runaway control.
"""

import pytest
from budgetpass.generation.backends import open_llamacpp
from budgetpass.generation.runaway import RunawayGuard, RunawayRule
from budgetpass.generation.types import SamplingParams

pytestmark = pytest.mark.slow

LOOPING = "zeros = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
MAX_TOKENS = 128
N, SEED = 4, 2


def test_a_greedy_loop_is_cut_long_before_the_token_limit(smol_path):
    model = open_llamacpp(smol_path)
    params = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)
    without = model.generate(LOOPING, 1, SamplingParams(**{**params.__dict__, "runaway": None}))
    assert without.completions[0].finish_reason == "length"  # the prompt does make it loop
    cut = model.generate(LOOPING, 1, params).completions[0]
    assert cut.finish_reason == "runaway"
    assert cut.token_count < MAX_TOKENS // 2 and ", 0, 0, 0" in cut.text
    assert RunawayGuard(RunawayRule(), 1).loop(cut.token_ids)  # cut for the loop it is in
    assert without.completions[0].text.startswith(cut.text)  # nothing else changed


def test_the_batch_does_not_wait_on_its_runaways(smol_path):
    model = open_llamacpp(smol_path)
    params = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=MAX_TOKENS, seed=SEED,
                            stop=("]",))
    free = model.generate(LOOPING, N, SamplingParams(**{**params.__dict__, "runaway": None}))
    controlled = model.generate(LOOPING, N, params)
    reasons = [c.finish_reason for c in controlled.completions]
    assert "runaway" in reasons and "stop" in reasons, reasons
    for before, after in zip(free.completions, controlled.completions):
        if after.finish_reason == "runaway":
            assert before.token_count > after.token_count  # it would have run on
            assert before.text.startswith(after.text)
        else:  # the others finish normally, exactly as they did without the control
            assert (after.text, after.finish_reason) == (before.text, before.finish_reason)
    assert controlled.generated_tokens < free.generated_tokens
