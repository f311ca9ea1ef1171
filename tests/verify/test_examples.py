"""Examples from docstrings in every style, and inputs from type hints (pure logic, fast)."""

import pytest
from budgetpass.verify.examples import (
    ProbeInput,
    docstring_examples,
    outputs_match,
    parse_examples,
)
from budgetpass.verify.typed_inputs import typed_inputs


def pairs(doc, name="f", n_params=1):
    return [(e.source.strip(), e.want) for e in parse_examples(doc, name, n_params)]


def test_doctest_blocks_with_continuations_and_ragged_indentation():
    doc = """Sum.

        >>> f([1, 2])
        3
      >>> x = [
      ...   4]
      >>> f(x)
      4
    """
    assert pairs(doc) == [("f([1, 2])", "3"), ("x = [\n  4]", ""), ("f(x)", "4")]


@pytest.mark.parametrize("doc, expected", [
    ("Initials: 'ada lovelace' -> 'AL'", [("f('ada lovelace')", "'AL'")]),
    ("f(2) -> 4", [("f(2)", "4")]),
    ("f(2) => 4 and f(3) ==> 6", [("f(2)", "4"), ("f(3)", "6")]),
    ("f([1, 2]) == 3", [("f([1, 2])", "3")]),
    ("f('x') should return 'y'.", [("f('x')", "'y'")]),
    ("f(4) returns true", [("f(4)", "True")]),
    ("It returns 3 for [1, 2].", [("f([1, 2])", "3")]),
    ("decimal(15)   # returns \"db1111db\"", []),  # another function's call: not ours
    ("f(15)   # returns \"db1111db\"", [("f(15)", "'db1111db'")]),
    ("For n = 1000, the output should be \"1\".", [("f(n=1000)", "'1'")]),
    ("f(\"5 apples\", 19) ->19 - 5 - 6", [("f('5 apples', 19)", "8")]),
    ("Input: [4,2,3]\nOutput: [2, 1]", [("f([4, 2, 3])", "[2, 1]")]),
])
def test_prose_examples(doc, expected):
    assert pairs(doc) == expected


def test_tuple_input_spreads_over_the_parameters():
    assert pairs("(1, 2) -> 3", "add", 2) == [("add(1, 2)", "3")]
    assert pairs("(1, 2) -> 3", "first", 1) == [("first((1, 2))", "3")]


def test_google_and_numpy_example_sections():
    google = """Double it.

    Examples:
        f(2)  # 4
        >>> f(3)
        6
    """
    assert sorted(pairs(google)) == [("f(2)", "4"), ("f(3)", "6")]
    numpy = """Double it.

    Examples
    --------
    >>> f(5)
    10

    f(6) -> 12
    """
    assert sorted(pairs(numpy)) == [("f(5)", "10"), ("f(6)", "12")]


@pytest.mark.parametrize("junk", [
    "", "->", "f(", "f(x) -> y", "f(1 -> 2", ">>> f(\n", "'unterminated -> 'x", "a -> b -> c",
    "f(open('/etc/passwd')) -> 1", "f(__import__('os')) == 0", "x" * 10_000 + " -> 1",
    "\x00\x01 -> \udcff", "f(" * 500 + "1" + ")" * 500 + " -> 1", "returns for", "For n = , output",
])
def test_junk_is_skipped_never_a_crash(junk):
    found = parse_examples(junk, "f")
    for example in found:  # whatever is accepted calls f with literals only
        assert example.source.startswith("f(") or example.source.startswith(("x", "a"))
        assert "open" not in example.source and "__import__" not in example.source


def test_docstring_examples_of_one_function_by_name():
    source = '''import os

def other(x):
    """other(1) -> 2"""

def initials(name: str) -> str:
    """The initials, upper case: 'ada lovelace' -> 'AL'."""
    pass
'''
    assert docstring_examples(source, "initials") == [
        ProbeInput("initials('ada lovelace')\n", "'AL'", "prose")]
    assert docstring_examples("def broken(:\n", "broken") == []
    assert docstring_examples(source, "missing") == []


def test_outputs_match_values_not_spelling():
    assert outputs_match("[1, 2]\n", "[1,2]")
    assert outputs_match("0.30000000000000004\n", "0.3")
    assert outputs_match("", "None")
    assert not outputs_match("1\n", "True")  # a bool is not an int here
    assert not outputs_match("'AL'\n", "'Al'")
    assert outputs_match("hello  world\n", "hello world")


def test_typed_inputs_from_hints_or_from_the_examples_arguments():
    source = "from typing import List\n\ndef f(xs: List[int], k: int) -> int:\n    pass\n"
    calls = [p.source for p in typed_inputs(source, "f", count=4)]
    assert calls == ["f([], 2)\n", "f([1], 3)\n", "f([1, 2, 3], 5)\n", "f([3, 1, 2], 10)\n"]
    untyped = 'def g(s):\n    """g("abc") => 3"""\n'
    assert all(p.source.startswith("g('") for p in typed_inputs(untyped, "g"))
    assert typed_inputs("def h(thing):\n    pass\n", "h") == []  # nothing to go on
    assert typed_inputs("class C:\n    def m(self, x: int):\n        pass\n", "C.m") == []
