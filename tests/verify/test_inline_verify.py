"""Inline verification: whole-body proposals are tested in one warm worker within the time limit,
passing ones first, with the user's extra pytest options."""

import shutil

import pytest
from budgetpass.generation.budget import BudgetRequest, plan_budget
from budgetpass.generation.engine import load_model, template_for
from budgetpass.generation.inline import cursor_context
from budgetpass.generation.prompts import model_prompt_info
from budgetpass.verify.inline import inline_completions

from tests.conftest import EXAMPLE

pytestmark = pytest.mark.slow

STUB = '    """Split ``items`` into consecutive lists of ``size`` items; the last may be shorter."""\n' \
       '    raise NotImplementedError\n'


@pytest.fixture
def emptied(tmp_path):
    """(path, buffer text, cursor offset): chunk's stub line emptied in the buffer only."""
    project = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, project)
    path = project / "textkit" / "text.py"
    text = path.read_text()
    assert STUB in text
    text = text.replace(STUB, STUB.split("\n")[0] + "\n    \n")
    offset = text.index(STUB.split("\n")[0]) + len(STUB.split("\n")[0]) + 1 + 4
    return path, text, offset


def complete(qwen_path, path, text, offset, **kwargs):
    model = load_model(qwen_path)
    ctx = cursor_context(text, offset)
    assert ctx.multiline
    budget = plan_budget(BudgetRequest(metric="samples", samples=4), 0.5e9, 1.5e9)
    info = model_prompt_info(model, "qwen2.5-coder-0.5b", template_for(model))
    return inline_completions(model, info, ctx, budget, 64, text=text, path=path,
                              verify_within_ms=30000, **kwargs)


def test_a_passing_proposal_is_verified_and_comes_first(qwen_path, emptied):
    path, text, offset = emptied
    result = complete(qwen_path, path, text, offset)
    assert len(result.tests) == 3 and result.items
    assert result.items[0].verified, [(c.text, c.run and c.run.summary()) for c in result.items]
    assert path.read_text() != text  # the buffer was tested, the file left as it was


def test_extra_pytest_args_reach_inline_runs_and_bad_ones_are_refused(qwen_path, emptied):
    path, text, offset = emptied
    # -k selecting none of chunk's tests: nothing runs, so nothing can count as verified.
    narrowed = complete(qwen_path, path, text, offset, pytest_args=("-k", "no_such_test"))
    assert narrowed.items and not any(c.verified for c in narrowed.items)
    assert all(o.outcome != "passed" for c in narrowed.items if c.run for o in c.run.outcomes), \
        [c.run.summary() for c in narrowed.items if c.run]
    refused = complete(qwen_path, path, text, offset, pytest_args=("--junitxml=out.xml",))
    assert refused.items and all(c.run is None for c in refused.items)
    assert any("--junitxml" in note for note in refused.notes), refused.notes
