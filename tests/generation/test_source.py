import pytest
from budgetpass.generation.source import (
    SourceError,
    is_stub,
    locate_function,
    normalize_body,
    splice_body,
    without_stub_bodies,
)

SOURCE = '''import math


def area(r):
    """Area of a circle."""
    raise NotImplementedError


class Shape:
    def scale(self, k):
        pass

    def name(self):
        return "shape"


def tail():
    return 1
'''


def test_locate_function_cuts_after_docstring():
    site = locate_function(SOURCE, "area")
    assert SOURCE[: site.body_start].endswith('"""Area of a circle."""\n')
    assert SOURCE[site.body_start : site.body_end] == "    raise NotImplementedError\n"
    assert site.body_indent == "    " and site.def_indent == ""


def test_locate_method_by_qualified_name():
    site = locate_function(SOURCE, "Shape.scale")
    assert SOURCE[site.body_start : site.body_end] == "        pass\n"
    assert site.def_indent == "    "


def test_unknown_function_lists_the_known_ones():
    with pytest.raises(SourceError, match="no function named 'nope'.*area, Shape.scale"):
        locate_function(SOURCE, "nope")


def test_syntax_error_names_line():
    with pytest.raises(SourceError, match=r"<file>:1:.*syntax error"):
        locate_function("def f(:\n    pass\n", "f")


def test_splice_replaces_only_the_body():
    site = locate_function(SOURCE, "area")
    out = splice_body(SOURCE, site, "    return math.pi * r * r\n")
    assert "return math.pi * r * r" in out and "raise NotImplementedError" not in out
    assert out.replace("    return math.pi * r * r\n", "    raise NotImplementedError\n") == SOURCE


def test_normalize_body_stops_at_dedent():
    site = locate_function(SOURCE, "area")
    generated = "    x = r * r\n\n    return math.pi * x\n\ndef other():\n    pass\n"
    assert normalize_body(generated, site).text == "    x = r * r\n\n    return math.pi * x\n"


def test_normalize_method_body_stops_at_next_method():
    site = locate_function(SOURCE, "Shape.scale")
    assert normalize_body("        return k\n    def more(self):\n", site).text == \
        "        return k\n"


def test_stub_detection():
    assert is_stub("    raise NotImplementedError\n")
    assert is_stub("    # todo\n    pass\n")
    assert not is_stub("    return 1\n")


def test_without_stub_bodies_drops_other_stubs_only():
    context = without_stub_bodies(SOURCE, keep="area")
    assert "def area" in context and "raise NotImplementedError" in context
    assert "def scale" not in context  # another stub
    assert "def name" in context and "def tail" in context
