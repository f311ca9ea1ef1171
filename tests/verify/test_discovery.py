"""Discovery on real layouts: src/ packages, tests beside modules, unittest, parametrize, conftest
fixtures and docstring examples. The last test runs what discovery found, in the sandbox."""

import sys
from pathlib import Path

import pytest
from budgetpass.verify import sandbox
from budgetpass.verify.discovery import (
    doctests_blocked,
    find_tests,
    module_name,
    package_root,
    test_imports,
)
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.session import run_each


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_finds_tests_that_name_the_function(tmp_path):
    _write(tmp_path, "pkg/mod.py", "def f():\n    pass\n\ndef g():\n    pass\n")
    _write(tmp_path, "tests/test_mod.py",
           "from pkg.mod import f, g\n\n"
           "def test_f():\n    assert f() is None\n\n"
           "def test_g():\n    assert g() is None\n\n"
           "class TestMore:\n    def test_f_again(self):\n        assert f() is None\n")
    _write(tmp_path, "tests/other_test.py", "import pkg.mod as m\n\ndef test_attr():\n    m.f()\n")
    found = find_tests(tmp_path, "f")
    assert found.node_ids == ("tests/other_test.py::test_attr", "tests/test_mod.py::test_f",
                              "tests/test_mod.py::TestMore::test_f_again")


def test_method_by_qualified_name_and_unittest_style(tmp_path):
    _write(tmp_path, "tests/test_cls.py",
           "import unittest\nfrom pkg import Box\n\n"
           "class BoxCase(unittest.TestCase):\n    def test_open(self):\n        Box().open()\n"
           "    def test_close(self):\n        Box().close()\n")
    _write(tmp_path, "tests/test_files.py", "def test_open_file():\n    open(__file__).close()\n")
    assert find_tests(tmp_path, "Box.open").node_ids == ("tests/test_cls.py::BoxCase::test_open",)


def test_unittest_set_up_that_uses_the_function_selects_every_test(tmp_path):
    _write(tmp_path, "tests/test_setup.py",
           "import unittest\nfrom pkg import load\n\n"
           "class LoadCase(unittest.TestCase):\n    def setUp(self):\n        self.data = load()\n"
           "    def test_a(self):\n        self.assertTrue(self.data)\n"
           "    def test_b(self):\n        self.assertEqual(len(self.data), 2)\n")
    assert find_tests(tmp_path, "load").node_ids == ("tests/test_setup.py::LoadCase::test_a",
                                                      "tests/test_setup.py::LoadCase::test_b")


def test_file_importing_the_name_without_direct_use_is_selected_whole(tmp_path):
    _write(tmp_path, "tests/test_fixture.py",
           "import pytest\nfrom pkg import f\n\nHELPER = f\n\n"
           "def test_value():\n    assert HELPER\n")
    assert find_tests(tmp_path, "f").node_ids == ("tests/test_fixture.py",)


def test_fixtures_in_conftest_and_parametrized_tests(tmp_path):
    _write(tmp_path, "conftest.py",
           "import pytest\nfrom shop.prices import total\n\n"
           "@pytest.fixture\ndef basket_total():\n    return total([1, 2])\n\n"
           "@pytest.fixture\ndef doubled(basket_total):\n    return 2 * basket_total\n\n"
           "@pytest.fixture\ndef unrelated():\n    return 1\n")
    _write(tmp_path, "tests/test_basket.py",
           "import pytest\n\n"
           "def test_total(basket_total):\n    assert basket_total == 3\n\n"
           "def test_doubled(doubled):\n    assert doubled == 6\n\n"
           "def test_other(unrelated):\n    assert unrelated\n\n"
           "@pytest.mark.parametrize('items, want', [([1], 1), ([], 0)])\n"
           "def test_param(items, want):\n    from shop.prices import total\n"
           "    assert total(items) == want\n")
    assert find_tests(tmp_path, "total").node_ids == (
        "tests/test_basket.py::test_total", "tests/test_basket.py::test_doubled",
        "tests/test_basket.py::test_param")


def test_src_layout_tests_beside_modules_and_doctests(tmp_path):
    _write(tmp_path, "src/calc/__init__.py", "")
    _write(tmp_path, "src/calc/ops.py",
           'def add(a, b):\n    """Sum.\n\n    >>> add(2, 3)\n    5\n    """\n    return a + b\n\n'
           "def sub(a, b):\n    return a - b\n")
    _write(tmp_path, "src/calc/ops_test.py",
           "from calc.ops import add\n\ndef test_add():\n    assert add(1, 1) == 2\n")
    found = find_tests(tmp_path, "add", target_file=tmp_path / "src/calc/ops.py")
    assert found.node_ids == ("src/calc/ops_test.py::test_add", "src/calc/ops.py::calc.ops.add")
    assert find_tests(tmp_path, "sub", target_file=tmp_path / "src/calc/ops.py").node_ids == ()


def test_humaneval_style_docstring_examples_count_as_tests(tmp_path):
    _write(tmp_path, "solution.py",
           "class Box:\n    def size(self):\n        \"\"\"\n        >>> Box().size()\n"
           "        3\n        \"\"\"\n        return 3\n")
    assert find_tests(tmp_path, "Box.size", target_file=tmp_path / "solution.py").node_ids == (
        "solution.py::solution.Box.size",)


@pytest.mark.parametrize(("config", "runs"), [
    ("[tool.pytest.ini_options]\ndoctest_optionflags = ['NORMALIZE_WHITESPACE', 'FLOAT_CMP']\n",
     False),
    ("[tool.pytest.ini_options]\ndoctest_optionflags = ['NORMALIZE_WHITESPACE', 'ELLIPSIS']\n",
     True),
    ("[tool.pytest.ini_options]\ndoctest_plus = 'enabled'\ndoctest_optionflags = 'FLOAT_CMP'\n",
     True),
])
def test_doctests_are_selected_only_where_pytest_can_run_them(tmp_path, config, runs):
    """sympy names FLOAT_CMP (for its own doctest runner): pytest's doctest collection then stops
    the whole run, the project's real tests with it; pytest-doctestplus knows the flag."""
    _write(tmp_path, "pyproject.toml", config)
    _write(tmp_path, "calc.py", 'def add(a, b):\n    """>>> add(2, 3)\n    5\n    """\n'
           "    return a + b\n")
    _write(tmp_path, "test_calc.py", "from calc import add\n\ndef test_add():\n"
           "    assert add(1, 1) == 2\n")
    found = find_tests(tmp_path, "add", target_file=tmp_path / "calc.py").node_ids
    assert found == ("test_calc.py::test_add",) + (("calc.py::calc.add",) if runs else ())
    assert (doctests_blocked(tmp_path) is None) == runs


def test_no_tests_and_skipped_folders(tmp_path):
    _write(tmp_path, ".venv/lib/test_x.py", "def test_f():\n    f()\n")
    _write(tmp_path, "tests/test_broken.py", "def test_f(:\n")
    assert find_tests(tmp_path, "f").node_ids == ()


def test_module_name_is_the_one_pytest_imports_under(tmp_path):
    _write(tmp_path, "src/calc/__init__.py", "")
    _write(tmp_path, "src/calc/ops.py", "")
    _write(tmp_path, "loose/mod.py", "")  # a folder that is not a package
    assert module_name(tmp_path, tmp_path / "src/calc/ops.py") == "calc.ops"
    assert module_name(tmp_path, tmp_path / "src/calc/__init__.py") == "calc"
    assert package_root(tmp_path, tmp_path / "src/calc/ops.py") == tmp_path / "src"
    assert module_name(tmp_path, tmp_path / "loose/mod.py") == "mod"
    assert package_root(tmp_path, tmp_path / "loose/mod.py") == tmp_path / "loose"
    assert module_name(tmp_path, tmp_path / "top.py") == "top"


def test_test_imports_lists_what_tests_and_conftests_import(tmp_path):
    _write(tmp_path, "conftest.py", "import json\n")
    _write(tmp_path, "tests/test_a.py", "import os.path\nfrom decimal import Decimal\nfrom . import x\n")
    assert test_imports(tmp_path, ("tests/test_a.py::test_x",)) == {"json", "os", "decimal"}


@pytest.mark.slow
def test_discovered_ids_run_in_the_sandbox(tmp_path):
    """What discovery selects is what pytest runs: unittest, parametrize, conftest, doctest, src/."""
    _write(tmp_path, "pyproject.toml", "[project]\nname = 'calc'\n")
    _write(tmp_path, "src/calc/__init__.py", "")
    source = ('def add(a, b):\n    """Sum.\n\n    >>> add(2, 3)\n    5\n    """\n    return a + b\n')
    _write(tmp_path, "src/calc/ops.py", source)
    _write(tmp_path, "tests/conftest.py",
           "import pytest\nfrom calc.ops import add\n\n@pytest.fixture\ndef two():\n"
           "    return add(1, 1)\n")
    _write(tmp_path, "tests/test_ops.py",
           "import unittest\nimport pytest\nfrom calc.ops import add\n\n"
           "def test_two(two):\n    assert two == 2\n\n"
           "@pytest.mark.parametrize('a, b, c', [(1, 2, 3), (0, 0, 0)])\n"
           "def test_param(a, b, c):\n    assert add(a, b) == c\n\n"
           "class AddCase(unittest.TestCase):\n    def test_neg(self):\n"
           "        self.assertEqual(add(-1, 1), 0)\n")
    found = find_tests(tmp_path, "add", target_file=tmp_path / "src/calc/ops.py")
    wrong = source.replace("return a + b", "return a - b")
    with WarmWorker(tmp_path, sandbox.probe("auto"), sandbox.Limits(wall_seconds=30),
                    sys.executable) as worker:
        good, bad = run_each(worker, "src/calc/ops.py", [source, wrong], found.node_ids)
    assert good.passed, good.output
    assert sorted(o.node_id for o in good.outcomes) == sorted([
        "tests/test_ops.py::test_two", "tests/test_ops.py::test_param[1-2-3]",
        "tests/test_ops.py::test_param[0-0-0]", "tests/test_ops.py::AddCase::test_neg",
        "src/calc/ops.py::calc.ops.add"])
    assert not bad.passed
    assert {o.node_id: o.outcome for o in bad.outcomes}["tests/test_ops.py::test_param[0-0-0]"] == "passed"
    assert {o.node_id: o.outcome for o in bad.outcomes}["src/calc/ops.py::calc.ops.add"] == "failed"
