from pathlib import Path

from budgetpass.verify.discovery import find_tests


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
    assert find_tests(tmp_path, "Box.open").node_ids == ("tests/test_cls.py::BoxCase::test_open",)


def test_file_importing_the_name_without_direct_use_is_selected_whole(tmp_path):
    _write(tmp_path, "tests/test_fixture.py",
           "import pytest\nfrom pkg import f\n\n@pytest.fixture\ndef value():\n    return f()\n\n"
           "def test_value(value):\n    assert value\n")
    assert find_tests(tmp_path, "f").node_ids == ("tests/test_fixture.py",)


def test_no_tests_and_skipped_folders(tmp_path):
    _write(tmp_path, ".venv/lib/test_x.py", "def test_f():\n    f()\n")
    _write(tmp_path, "tests/test_broken.py", "def test_f(:\n")
    assert find_tests(tmp_path, "f").node_ids == ()
