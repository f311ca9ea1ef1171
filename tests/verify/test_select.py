"""Selection with tests (passed / partial / failed) and the no-test rankers."""

import sys

import pytest
from budgetpass.verify import sandbox
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.select import (
    ProbeInput,
    RankInput,
    TestedCandidate,
    call_site_inputs,
    choose_tested,
    distinct,
    docstring_examples,
    execution_signals,
    rank_candidates,
    ranking_inputs,
    reviewer_prompt,
)


def test_all_pass_picks_highest_logprob_then_shorter():
    cands = [TestedCandidate(0, -0.5, 10, 3, True), TestedCandidate(1, -0.2, 30, 3, True),
             TestedCandidate(2, -0.2, 20, 3, True), TestedCandidate(3, -0.1, 5, 2, False)]
    assert choose_tested(cands) == ("passed", cands[2])


def test_some_pass_picks_most_passing_as_partial():
    cands = [TestedCandidate(0, -0.1, 10, 1, False), TestedCandidate(1, -0.9, 10, 2, False),
             TestedCandidate(2, -0.3, 10, 2, False)]
    assert choose_tested(cands) == ("partial", cands[2])
    assert choose_tested([TestedCandidate(0, -0.1, 10, 0, False)]) == ("failed", None)


SOURCE = '''def double(x):
    """Twice x.

    >>> double(2)
    4
    >>> double(-1)
    -2
    """
{body}
'''


def _input(index, body, logprob):
    return RankInput(index, SOURCE.format(body=body), logprob, len(body))


def test_distinct_drops_unparsable_and_merges_same_ast():
    inputs = [_input(0, "    return x*2", -0.3), _input(1, "    return x * 2  # same", -0.1),
              _input(2, "    return (", -0.01), _input(3, "    return x + x", -0.5)]
    kept, merged = distinct(inputs, "double")
    assert [c.index for c in kept] == [1, 3] and merged == {0: 1}


def test_inputs_from_docstring_and_call_sites(tmp_path):
    assert docstring_examples(SOURCE.format(body="    pass"), "double") == [
        ProbeInput("double(2)\n", "4"), ProbeInput("double(-1)\n", "-2")]
    (tmp_path / "app.py").write_text("from m import double\nprint(double(21), double(y))\n"
                                     "obj.double(1)\n")
    assert call_site_inputs(tmp_path, "double") == [ProbeInput("double(21)\n", None, "call_site")]
    typed = SOURCE.replace("def double(x):", "def double(x: int):").format(body="    pass")
    found = ranking_inputs(typed, "double", tmp_path)
    assert [p.origin for p in found[:3]] == ["docstring", "docstring", "call_site"]
    assert found[3:] and all(p.origin == "type_hints" for p in found[3:])
    assert "double(2)\n" not in [p.source for p in found[3:]]  # no duplicates


def test_agreeing_cluster_beats_a_likelier_outlier():
    """Three samples agree on every input; the likeliest sample disagrees: agreement and the
    combined ranker pick the cluster, and duplicates count as agreeing samples."""
    outputs = {0: ["1", "9"], 1: ["1", "4"], 2: ["1", "4"], 3: ["1", "5"]}
    passed, agreement, cluster = execution_signals([0, 1, 2, 3], outputs, [None, None],
                                                   copies={1: 2})
    assert cluster == {0: 1.0, 1: 3.0, 2: 3.0, 3: 1.0}
    assert agreement[1] > agreement[0] and passed == {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}


def test_reviewer_prompt_puts_the_code_before_its_docstring():
    prompt, continuation = reviewer_prompt(SOURCE.format(body="    return 2 * x"), "double")
    assert prompt.startswith("def double(x):\n    return 2 * x") and "Twice x" not in prompt
    assert continuation.startswith("Twice x.") and continuation.endswith('"""')
    assert reviewer_prompt("def f(x):\n    return x\n", "f") is None  # no docstring


def test_unknown_ranker_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown ranker"):
        rank_candidates([], "double", ("magic",))


@pytest.mark.slow
def test_execution_agreement_and_doctest_rankers_in_the_sandbox(tmp_path):
    (tmp_path / "mod.py").write_text(SOURCE.format(body="    raise NotImplementedError"))
    inputs = [_input(0, "    return x ** 2", -0.05),  # likeliest, wrong on -1
              _input(1, "    return 2 * x", -0.4), _input(2, "    return x + x", -0.3),
              _input(3, "    while True:\n        pass", -0.2)]
    examples = docstring_examples(inputs[0].source, "double") + [ProbeInput("double(10)\n", None)]
    with WarmWorker(tmp_path, sandbox.probe("auto"), sandbox.Limits(wall_seconds=20),
                    sys.executable) as worker:
        ranked = rank_candidates(inputs, "double", ("mean_logprob", "execution_agreement",
                                                    "doctest", "combined"), worker, "mod.py",
                                 examples)
    assert ranked["mean_logprob"].order == [0, 3, 2, 1]
    assert ranked["execution_agreement"].order[:2] == [2, 1]  # the cluster of two, best first
    # per input, how many samples gave the same output, averaged over the 3 inputs (double(2):
    # x ** 2 agrees too; the endless loop times out everywhere)
    assert ranked["execution_agreement"].scores == pytest.approx(
        {0: 5 / 3, 1: 7 / 3, 2: 7 / 3, 3: 1.0})
    assert ranked["doctest"].scores == {0: 1.0, 1: 2.0, 2: 2.0, 3: 0.0}
    combined = ranked["combined"]
    assert combined.order[:2] == [2, 1] and not combined.fallback
    assert "agrees with 1 of 3 other candidates on 3 inputs" in combined.note
    assert "matches 2 of 2 docstring examples" in combined.note
