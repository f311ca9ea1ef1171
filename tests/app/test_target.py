"""How a generated text becomes a candidate: the reason it cannot be used names a cut-short
decode (the token limit, or runaway control)."""

import pytest
from budgetpass.app.config import Config
from budgetpass.app.target import resolve
from budgetpass.generation.types import Completion

SOURCE = "def clamp(x, lo, hi):\n    raise NotImplementedError\n"


@pytest.fixture
def target(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    return resolve(path, SOURCE, "clamp", None, "whole_body", Config())


@pytest.mark.parametrize("finish,said", [
    ("runaway", "(cut as a runaway: far longer than the others, or looping)"),
    ("length", "(hit the token limit)"), ("stop", "")])
def test_a_cut_candidate_says_why_it_does_not_parse(target, finish, said):
    broken = target.candidate(Completion(0, "    return max(lo, min(x,", (1, 2), (-0.1, -0.1),
                                         finish))
    assert not broken.parses and broken.finish_reason == finish
    assert broken.problem.startswith("syntax error") and broken.problem.endswith(said)
    fine = target.candidate(Completion(1, "    return max(lo, min(x, hi))\n", (1,), (-0.1,),
                                       finish))
    assert fine.parses and fine.problem == ""
