"""How the selected tests call a function, as the prompt shows it: the lines that name it and the
first cases of their parametrization (listed inline or named at module level), bounded."""

from pathlib import Path

from budgetpass.verify.usage import LINE_CHARS, MAX_LINES, test_calls

TESTS = '''import pytest
from inflect import ordinal, Word

NUMBERS = [("1", "st"), ("2", "nd"), ("3", "rd"), ("11", "th")]


@pytest.mark.parametrize(("number", "suffix"), NUMBERS)
def test_ordinal(number, suffix):
    assert ordinal(number) == suffix


@pytest.mark.parametrize("n", [5])
def test_other(n):
    assert n == 5


class TestWord:
    def test_plural(self):
        word = Word("cat")
        assert word.plural() == "cats"
        assert len(word.text) == 3
'''


def write(root: Path, text: str = TESTS) -> None:
    (root / "tests").mkdir()
    (root / "tests" / "test_inflect.py").write_text(text)


def test_the_lines_that_call_it_and_the_cases_they_run(tmp_path: Path):
    write(tmp_path)
    lines = test_calls(tmp_path, ("tests/test_inflect.py::test_ordinal[1-st]",
                                  "tests/test_inflect.py::test_other[5]",
                                  "inflect.py::inflect.ordinal"), "ordinal")
    assert lines == ('cases ("number", "suffix"): ("1", "st"), ("2", "nd"), ("3", "rd"), ...',
                     "assert ordinal(number) == suffix")  # test_other never names it


def test_a_method_is_found_by_its_attribute(tmp_path: Path):
    write(tmp_path)
    lines = test_calls(tmp_path, ("tests/test_inflect.py::TestWord::test_plural",), "Word.plural")
    assert lines == ('assert word.plural() == "cats"',)


def test_bounded_and_never_broken_by_a_test_file(tmp_path: Path):
    many = "".join(f"    assert f({i}) == {'x' * 300}\n" for i in range(30))
    write(tmp_path, f"def test_f():\n{many}")
    lines = test_calls(tmp_path, ("tests/test_inflect.py::test_f",), "f")
    assert len(lines) == MAX_LINES and all(len(line) <= LINE_CHARS for line in lines)
    (tmp_path / "tests" / "test_inflect.py").write_text("def test_f(:\n")  # mid-edit
    assert test_calls(tmp_path, ("tests/test_inflect.py::test_f",), "f") == ()
    assert test_calls(tmp_path, ("tests/test_gone.py::test_f",), "f") == ()
