"""Cursor shapes for inline completion: tree-sitter on code as it is mid-keystroke."""

from budgetpass.generation.inline import (
    PREFIX_CHARS,
    cursor_context,
    function_at,
    functions,
    inline_prompt,
    tidy_inline,
)
from budgetpass.generation.prompts import QWEN_CODER, ModelPromptInfo

QWEN = ModelPromptInfo("qwen", QWEN_CODER)

SOURCE = '''import math


def area(r: float) -> float:
    """Area of a circle."""
    

class Shape:
    def scale(self, k):
        raise NotImplementedError

    def name(self):
        return "shape"


def broken(x):
    y = [x for
'''


def at(text: str, needle: str, after: int = 0) -> int:
    return text.index(needle) + after


def test_blank_line_of_a_docstring_only_body_asks_for_the_whole_body():
    offset = at(SOURCE, '"""Area of a circle."""\n    ', len('"""Area of a circle."""\n    '))
    ctx = cursor_context(SOURCE, offset)
    assert ctx.multiline and ctx.function.qualname == "area"
    assert ctx.suffix == "" and ctx.prefix.endswith('"""Area of a circle."""\n    ')
    prompt = inline_prompt(ctx, QWEN, text=SOURCE)
    assert prompt.text.startswith("<|fim_prefix|>") and "\ndef " in prompt.stops


def test_a_stub_method_is_an_empty_body_and_gets_its_qualified_name():
    text = SOURCE.replace("    def scale(self, k):\n", "    def scale(self, k):\n        \n")
    offset = at(text, "def scale(self, k):\n        ", len("def scale(self, k):\n        "))
    ctx = cursor_context(text, offset)
    assert ctx.multiline and ctx.function.qualname == "Shape.scale"


def test_typing_inside_a_statement_is_single_line():
    offset = at(SOURCE, 'return "shape"', len("return "))
    ctx = cursor_context(SOURCE, offset)
    assert not ctx.multiline and ctx.function.qualname == "Shape.name"
    assert inline_prompt(ctx, QWEN, text=SOURCE).stops[-1] == "\n"
    assert ctx.suffix.startswith('"shape"')


def test_broken_code_still_has_its_functions():
    names = [f.qualname for f in functions(SOURCE)]
    assert names == ["area", "Shape.scale", "Shape.name", "broken"]
    assert function_at(SOURCE, len(SOURCE) - 2).qualname == "broken"
    assert function_at(SOURCE, 3) is None  # on the import


def test_a_function_with_real_statements_is_not_empty():
    offset = at(SOURCE, 'return "shape"')
    assert not cursor_context(SOURCE, offset).multiline
    assert {f.qualname: f.body_is_empty for f in functions(SOURCE)}["Shape.scale"]


def test_tidy_keeps_one_line_or_the_body_up_to_the_function_end():
    line_ctx = cursor_context(SOURCE, at(SOURCE, 'return "shape"', len("return ")))
    assert tidy_inline("'circle'\n    def other(self):", line_ctx) == "'circle'"
    assert tidy_inline("   \nx", line_ctx) == ""
    offset = at(SOURCE, '"""Area of a circle."""\n    ', len('"""Area of a circle."""\n    '))
    body_ctx = cursor_context(SOURCE, offset)
    body = tidy_inline("return math.pi * r ** 2\n\n\ndef next_one():\n    pass", body_ctx)
    assert body == "return math.pi * r ** 2"
    assert tidy_inline("raise NotImplementedError\n", body_ctx) == ""


def test_prompt_window_is_bounded_and_stable_while_typing():
    big = "x = 1\n" * 20_000 + "def f(a):\n    return a"
    first = cursor_context(big, len(big) - 3)
    second = cursor_context(big, len(big))
    assert len(first.prefix) <= PREFIX_CHARS + 1024 + 10
    # Same window start: the backend can reuse the evaluated prompt tokens.
    assert second.prefix.startswith(first.prefix[:-10])
