"""Inline completion through solve: whole-body proposals are tested in a warm worker within the
time limit, passing ones first, with the user's extra pytest options; the worker stays warm for
the next request of the same project."""

import shutil
import time

import pytest
from budgetpass.app.complete import complete
from budgetpass.app.config import ConfigError, build
from budgetpass.app.workers import WorkerCache

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


def _config(qwen_path, **extra):
    """k = 4; a verify window long enough for a busy 2-core machine (this tests verification,
    not latency: bench/lsp_latency.py measures that)."""
    return build({"model.name": str(qwen_path), "budget.metric": "samples", "budget.samples": 4,
                  "inline.verify_within_ms": 600_000, **extra})


def test_a_passing_proposal_is_verified_and_comes_first(qwen_path, emptied):
    path, text, offset = emptied
    workers = WorkerCache()
    try:
        result = complete(path, text, offset, _config(qwen_path), workers=workers)
        assert result.multiline and len(result.report.tests) == 3 and result.items
        first = result.items[0]
        assert first.verified, [(c.text, c.passed) for c in result.items]
        assert (first.start, first.end) == (offset, offset)
        assert path.read_text() != text  # the buffer was tested, the file left as it was
        one = _config(qwen_path, **{"budget.samples": 1})  # the worker is under test now
        again = complete(path, text, offset, one, workers=workers)
        assert again.report.tests == result.report.tests
        assert workers.started == 1, "the second request reused the warm worker"
        time.sleep(0.01)
        (path.parent.parent / "tests" / "test_text.py").touch()  # a test file changed on disk
        complete(path, text, offset, one, workers=workers)
        assert workers.started == 2, "a changed test file starts a fresh worker"
    finally:
        workers.close()


def test_extra_pytest_args_reach_inline_runs_and_bad_ones_are_refused(qwen_path, emptied):
    path, text, offset = emptied
    # -k selecting none of chunk's tests: nothing runs, so nothing can count as verified.
    narrowed = complete(path, text, offset,
                        _config(qwen_path, **{"tests.extra_args": ("-k", "no_such_test")}))
    assert narrowed.items and not any(c.verified for c in narrowed.items)
    assert all(c.passed in (None, 0) for c in narrowed.items), [c.passed for c in narrowed.items]
    with pytest.raises(ConfigError, match="--junitxml"):
        _config(qwen_path, **{"tests.extra_args": ("--junitxml=out.xml",)})


def test_one_line_proposals_are_ranked_not_tested(qwen_path, emptied):
    path, text, _ = emptied
    at = text.index("def chunk(items: list, ") + len("def chunk(items: list, ")
    result = complete(path, text, at, _config(qwen_path))
    assert not result.multiline and result.report.tests == ()
    assert result.samples <= 2, "one line: a few samples at most"
    assert all("\n" not in c.text and c.passed is None for c in result.items)


def test_verify_within_zero_never_tests(qwen_path, emptied):
    path, text, offset = emptied
    result = complete(path, text, offset, _config(qwen_path, **{"inline.verify_within_ms": 0}))
    assert result.multiline and result.report.tests == () and result.items
    assert all(c.passed is None for c in result.items)
