"""The runaway rule on its own: lengths against finished siblings, loops, and when it is off."""

import pytest
from budgetpass.generation.runaway import RunawayGuard, RunawayRule
from budgetpass.generation.types import SamplingParams


def varied(n: int) -> list[int]:
    """Tokens without any short cycle (like real code)."""
    return [(i * 7919 + i * i) % 1000 for i in range(n)]


def test_nothing_is_cut_before_a_quorum_of_siblings_has_finished():
    guard = RunawayGuard(RunawayRule(), 4)
    guard.finished(20)  # 1 of 4: the median of one short candidate says little
    assert guard.limit is None and guard.verdict(varied(400)) is None


def test_a_candidate_far_longer_than_the_finished_median_is_cut():
    guard = RunawayGuard(RunawayRule(factor=3, floor=64), 4)
    guard.finished(30)
    guard.finished(50)  # half the batch: median 40 -> limit max(64, 120) = 120
    assert guard.limit == 120
    assert guard.verdict(varied(120)) is None
    assert "limit 120" in guard.verdict(varied(121))


def test_the_floor_protects_short_bodies():
    guard = RunawayGuard(RunawayRule(factor=3, floor=64), 2)
    guard.finished(3)  # a one-line sibling must not cut a real body at 9 tokens
    assert guard.limit == 64
    assert guard.verdict(varied(64)) is None and guard.verdict(varied(65)) is not None


@pytest.mark.parametrize("cycle", [[5], [1, 2], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]])
def test_a_repeated_cycle_is_a_loop(cycle):
    guard = RunawayGuard(RunawayRule(loop_repeats=4, loop_span=48), 1)
    tokens = varied(30)
    while guard.verdict(tokens) is None:
        tokens.append(cycle[(len(tokens) - 30) % len(cycle)])
        assert len(tokens) < 30 + 48 + 4 * len(cycle) + 1, "never called a loop"
    assert f"cycle of {len(cycle)} tokens" in guard.verdict(tokens)
    looped = len(tokens) - 30
    assert looped >= max(48, 4 * len(cycle))  # not before the span and the repeats are there


def test_a_few_repeats_or_a_long_cycle_are_not_a_loop():
    guard = RunawayGuard(RunawayRule(loop_period=16, loop_repeats=4, loop_span=48), 1)
    line = [7, 8, 9, 10, 11, 12]
    assert guard.verdict(varied(40) + line * 3) is None  # three equal lines: ordinary code
    assert guard.verdict(varied(40) + varied(20) * 4) is None  # a 20-token cycle: over the period
    assert guard.verdict(varied(500)) is None


def test_token_texts_work_as_well_as_ids():
    guard = RunawayGuard(RunawayRule(), 1)
    assert guard.verdict(["x", " =", " 1", "\n"] * 12) is not None


def test_off_when_the_params_say_so_or_decode_exactly_max_tokens():
    assert RunawayGuard.for_params(SamplingParams(), 2).rule == RunawayRule()
    assert RunawayGuard.for_params(SamplingParams(runaway=None), 2).rule is None
    off = RunawayGuard.for_params(SamplingParams(ignore_eos=True), 2)
    off.finished(1)
    assert off.verdict([1] * 500) is None and off.limit is None


def test_bad_rules_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="factor"):
        RunawayRule(factor=0.5)
    with pytest.raises(ValueError, match="quorum"):
        RunawayRule(quorum=0)


def test_the_default_leaves_a_verbose_body_beside_one_liners_alone():
    # bench/runaway_rule.py: a tighter default (3 x, 64 tokens) cut correct bodies about as often
    # as runaways when two siblings had written one-liners.
    guard = RunawayGuard(RunawayRule(), 4)
    guard.finished(18)
    guard.finished(22)
    assert guard.limit == 192
    assert guard.verdict(varied(150)) is None
    assert guard.verdict(varied(193)) is not None
