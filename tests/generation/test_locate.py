"""The one function locator: by qualified name (strict, for splicing) and by cursor (tolerant)."""

import ast

import pytest
from budgetpass.generation.locate import (
    SourceError,
    body_ast,
    find_function,
    function_at,
    functions,
    locate_function,
)
from budgetpass.generation.source import splice_body

SOURCE = '''import functools


@functools.lru_cache
@staticmethod
def cached(x: int) -> int:
    """Twice x.

    >>> cached(2)
    4
    """
    # the obvious way
    return 2 * x


class Outer:
    class Inner:
        async def fetch(self, url,
                        timeout=3):
            raise NotImplementedError

    def method(self):
        def helper():
            return 1
        return helper()


def emptied():
    """Only a docstring."""
    
    
def tail():  # a comment
    # first, a comment
    x = "é"  # non-ASCII before the end
    return x
'''


def _site(name):
    return locate_function(SOURCE, name)


def test_every_function_with_its_qualified_name():
    assert [f.qualname for f in functions(SOURCE)] == [
        "cached", "Outer.Inner.fetch", "Outer.method", "Outer.method.<locals>.helper", "emptied",
        "tail"]


def test_decorated_function_lines_signature_and_docstring():
    site = _site("cached")
    lines = SOURCE.split("\n")
    assert lines[site.start_line] == "@functools.lru_cache"
    assert lines[site.def_line].startswith("def cached")
    assert site.code_first_lines == {site.start_line + 1, site.def_line + 1}
    assert site.signature == "def cached(x: int) -> int:"
    start, end = site.docstring_range
    assert SOURCE[start:end].startswith('"""Twice x.') and SOURCE[start:end].endswith('"""')
    assert site.docstring.startswith("Twice x.") and ">>> cached(2)" in site.docstring
    # The comment after the docstring is part of the body a candidate replaces.
    assert SOURCE[site.body_start:site.body_end] == "    # the obvious way\n    return 2 * x\n"
    assert not site.is_async and not site.body_is_empty


def test_async_method_of_a_nested_class_with_a_two_line_signature():
    site = _site("Outer.Inner.fetch")
    assert site.is_async and site.body_is_empty
    assert site.signature == "async def fetch(self, url,\n                        timeout=3):"
    assert site.def_indent == "        " and site.body_indent == "            "
    assert SOURCE[site.body_start:site.body_end] == "            raise NotImplementedError\n"
    assert site.signature_end_line == site.def_line + 1 == site.header_end_line


def test_nested_function_is_named_as_python_names_it():
    site = _site("Outer.method.<locals>.helper")
    assert SOURCE[site.body_start:site.body_end] == "            return 1\n"


def test_edit_range_of_an_emptied_body_takes_the_blank_indentation():
    site = _site("emptied")
    assert site.body_start == site.body_end and site.body_is_empty
    start, end = site.edit_range
    assert SOURCE[start:end] == "    \n    \n"  # the lines left with indentation only
    assert site.body_indent == "    "
    spliced = splice_body(SOURCE, site, "    return 0\n")
    assert '"""Only a docstring."""\n    return 0\n    \n' in spliced
    ast.parse(spliced)


def test_comment_before_the_first_statement_stays_above_the_body_and_offsets_are_characters():
    site = _site("tail")
    body = SOURCE[site.body_start:site.body_end]
    assert body == '    x = "é"  # non-ASCII before the end\n    return x\n'
    assert site.header_end_line == site.def_line
    assert [ast.dump(s) for s in body_ast(SOURCE, site)] == [
        ast.dump(s) for s in ast.parse(body.replace("    ", "", 1).replace("\n    ", "\n")).body]


def test_strict_lookup_errors_say_what_is_wrong():
    with pytest.raises(SourceError, match="no function named 'nope'.*cached, Outer.Inner.fetch"):
        locate_function(SOURCE, "nope")
    with pytest.raises(SourceError, match=r"<file>:1:.*syntax error"):
        locate_function("def f(:\n    pass\n", "f")
    with pytest.raises(SourceError, match="defined more than once \\(lines 1, 3\\)"):
        locate_function("def f():\n    pass\ndef f():\n    pass\n", "f")
    with pytest.raises(SourceError, match="shares a line with its signature"):
        locate_function("def f(a,\n      b): return a\n", "f")
    with pytest.raises(SourceError, match="add a newline"):
        locate_function('def f():\n    """Doc."""', "f")


def test_a_buffer_with_syntax_errors_still_has_its_functions():
    broken = SOURCE.replace("    return x\n", "    return [x for\n")
    assert find_function(broken, "tail") is not None
    assert find_function(broken, "Outer.Inner.fetch").is_async
    with pytest.raises(SourceError, match="syntax error"):
        locate_function(broken, "tail")
    assert find_function(SOURCE, "missing") is None


def test_function_at_a_cursor():
    offset = SOURCE.index("return helper()")
    assert function_at(SOURCE, offset).qualname == "Outer.method"
    assert function_at(SOURCE, SOURCE.index("return 1")).qualname == "Outer.method.<locals>.helper"
    assert function_at(SOURCE, SOURCE.index("import")) is None
    # On the blank indented lines after a docstring-only body: still that function.
    assert function_at(SOURCE, SOURCE.index('"""Only a docstring."""') + 30).qualname == "emptied"


def test_former_callers_share_the_answer():
    from budgetpass.verify.select import docstring_examples, normalized_ast
    from budgetpass.verify.tracing import function_first_lines

    assert function_first_lines(SOURCE, "cached") == _site("cached").code_first_lines
    assert [e.source for e in docstring_examples(SOURCE, "cached")] == ["cached(2)\n"]
    # By qualified name: a method named like a top-level function is not confused with it.
    text = "def run():\n    return 1\n\nclass A:\n    def run(self):\n        return 2\n"
    assert normalized_ast(text, "A.run") != normalized_ast(text, "run")
    assert normalized_ast(text.replace("return 2", "return  (2)  # same"), "A.run") == \
        normalized_ast(text, "A.run")
