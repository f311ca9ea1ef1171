"""Runaway control in the llama.cpp batched loop, with real weights (SmolLM2-135M).

The prompt ends in a line written over and over; greedily the model goes on writing it forever,
so every candidate of a greedy batch is a runaway. Sampled, some candidates loop and others end
the function: the loopers are cut and the others come out exactly as without runaway control.
"""

import pytest
from budgetpass.generation.backends import open_llamacpp
from budgetpass.generation.runaway import RunawayGuard, RunawayRule
from budgetpass.generation.types import SamplingParams

pytestmark = pytest.mark.slow

LOOPING = "def greet():\n" + "    print('hello')\n" * 6
MAX_TOKENS = 256


def test_a_greedy_loop_is_cut_long_before_the_token_limit(smol_path):
    model = open_llamacpp(smol_path)
    params = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)
    without = model.generate(LOOPING, 1, SamplingParams(**{**params.__dict__, "runaway": None}))
    assert without.completions[0].finish_reason == "length"  # the prompt does make it loop
    cut = model.generate(LOOPING, 1, params).completions[0]
    assert cut.finish_reason == "runaway"
    assert cut.token_count < MAX_TOKENS // 2
    assert RunawayGuard(RunawayRule(), 1).loop(cut.token_ids)  # cut for the loop it is in
    assert without.completions[0].text.startswith(cut.text)  # nothing else changed


def test_the_batch_does_not_wait_on_its_runaways(smol_path):
    model = open_llamacpp(smol_path)
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=MAX_TOKENS, seed=SEED,
                            stop=("\ndef ", "\nclass "))
    free = model.generate(LOOPING, N, SamplingParams(**{**params.__dict__, "runaway": None}))
    controlled = model.generate(LOOPING, N, params)
    reasons = [c.finish_reason for c in controlled.completions]
    assert "runaway" in reasons and "stop" in reasons, reasons
    for before, after in zip(free.completions, controlled.completions):
        if after.finish_reason == "runaway":
            assert before.finish_reason == "length"  # it would have run to the limit
            assert before.text.startswith(after.text)
        else:  # the others finish normally, exactly as they did without the control
            assert (after.text, after.finish_reason) == (before.text, before.finish_reason)
    assert controlled.generated_tokens < free.generated_tokens
