"""`budgetpass serve` end to end over stdio, with the real Qwen2.5-Coder 0.5B model."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import EXAMPLE, tree_digest
from tests.server.lsp_session import start_editor

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

STUB = '''    """Split ``items`` into consecutive lists of ``size`` items; the last may be shorter."""
    raise NotImplementedError'''
EMPTY = '''    """Split ``items`` into consecutive lists of ``size`` items; the last may be shorter."""
    '''


@pytest.fixture
def project(tmp_path: Path, qwen_path) -> Path:
    dest = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dest


def chunk_position(text: str) -> tuple[int, int]:
    """The blank line of chunk's emptied body (line, character)."""
    lines = text.split("\n")
    row = next(i for i, line in enumerate(lines) if "the last may be shorter" in line) + 1
    return row, 4


async def open_emptied_chunk(editor, project: Path):
    """Open text.py with chunk's stub removed in the buffer only; (uri, text, command argument)."""
    path = project / "textkit" / "text.py"
    text = path.read_text().replace(STUB, EMPTY)
    uri = editor.open(path, text)
    await editor.wait_ready()
    row, col = chunk_position(text)
    return uri, text, {"uri": uri, "position": {"line": row, "character": col}}


def add_an_impossible_test_for_initials(project: Path) -> None:
    """A test no body of ``initials`` can pass: every run fails."""
    (project / "tests" / "test_impossible.py").write_text(
        "from textkit.text import initials\n\n\n"
        "def test_initials_is_never_this():\n    assert initials('ada lovelace') == 'never'\n")


async def open_at_initials(editor, project: Path):
    """Open text.py as it is on disk; (uri, text, the line of ``def initials``)."""
    path = project / "textkit" / "text.py"
    text = path.read_text()
    uri = editor.open(path, text)
    await editor.wait_ready()
    return uri, text, text.split("\n").index("def initials(name: str) -> str:")


def run_tests(project: Path, text: str) -> subprocess.CompletedProcess:
    (project / "textkit" / "text.py").write_text(text)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_text.py", "-k", "chunk"], cwd=project, capture_output=True,
                          text=True, check=False)


async def test_inline_then_generate_until_pass_applies_a_body_that_passes(project, tmp_path):
    editor = await start_editor(tmp_path / "state", {
        "budget": {"metric": "samples", "samples": 4}, "inline": {"debounceMs": 0}})
    try:
        path = project / "textkit" / "text.py"
        on_disk = tree_digest(project)
        text = path.read_text().replace(STUB, EMPTY)  # unsaved: the disk still has the stub
        uri = editor.open(path, text)
        await editor.wait_ready()
        row, col = chunk_position(text)

        body = await editor.inline(uri, row, col)
        assert body is not None and body.items, "no inline items for an empty body"
        assert any("\n" in i.insert_text or "return" in i.insert_text for i in body.items)
        # Each item says its test outcome (the command's title), tested ones first.
        statuses = [i.command.arguments[0] for i in body.items]
        assert [s["index"] for s in statuses] == list(range(len(body.items)))
        assert all(s["uri"] == uri and s["total"] == 3 for s in statuses if s["status"] != "untested")
        order = {"passed": 0, "failed": 1, "untested": 2}
        assert [order[s["status"]] for s in statuses] == sorted(order[s["status"]] for s in statuses)
        for item, s in zip(body.items, statuses):
            assert item.command.command == "budgetpass.inlineStatus"
            assert item.command.title == ("untested" if s["status"] == "untested" else
                                          f"{'✓' if s['status'] == 'passed' else '✗'} "
                                          f"{s['passed']}/{s['total']} tests")
        assert any("inline text.py" in m.message and "tests 3" in m.message
                   for m in editor.client.log_messages), "the body proposals were not tested"
        one_line = await editor.inline(uri, row - 2, len("def chunk(items: list, "))
        assert one_line is not None, "a one-line request at a ready model gets an answer"
        assert one_line.items and all("\n" not in i.insert_text for i in one_line.items)
        # Typing the first character of a shown proposal answers at once from it (no sampling);
        # asking again at the same spot too (VS Code does before it cycles).
        first = one_line.items[0].insert_text
        column = len("def chunk(items: list, ")
        at = sum(len(line) + 1 for line in text.split("\n")[:row - 2]) + column
        editor.edit(uri, at, at, first[0])
        through = await editor.inline(uri, row - 2, column + 1)
        if len(first) > 1:
            assert through.items[0].insert_text == first[1:]
        editor.edit(uri, at, at + 1, "")
        assert editor.texts[uri] == text
        again = await editor.inline(uri, row - 2, column)
        assert [i.insert_text for i in again.items] == [i.insert_text for i in one_line.items]
        reused = [m.message for m in editor.client.log_messages if "typed through" in m.message]
        assert len(reused) == 1 + (len(first) > 1), reused

        lenses = await editor.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        titles = [lens.command.title for lens in lenses]
        assert "▶ Generate until tests pass (3 tests)" in titles

        result = await editor.command("budgetpass.generateUntilPass",
                                      {"uri": uri, "position": {"line": row, "character": col}})
        assert result["status"] == "passed", result["message"]
        assert result["applied"] and result["budget"]["samples"] == 4
        assert len(editor.applied_edits) == 1
        reports = [v for values in editor.client.progress_reports.values() for v in values]
        assert isinstance(reports[0], types.WorkDoneProgressBegin)
        assert any(isinstance(r, types.WorkDoneProgressReport) and "passing" in (r.message or "")
                   for r in reports)
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)
        assert any("PASSED" in m.message and "tests: 3" in m.message and "k=4" in m.message
                   for m in editor.client.messages)
        assert tree_digest(project) == on_disk  # the server wrote nothing; the editor holds the edit
        new_text = editor.texts[uri]
        assert "raise NotImplementedError" in new_text.split("def chunk")[0]  # slugify untouched
        outcome = run_tests(project, new_text)
        assert outcome.returncode == 0, outcome.stdout[-2000:]
    finally:
        await editor.client.shutdown_session()


async def wait_for_progress(editor, kind=types.WorkDoneProgressReport, timeout=120):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for token, values in editor.client.progress_reports.items():
            if any(isinstance(v, kind) for v in values):
                return token
        await asyncio.sleep(0.02)
    raise AssertionError("no progress")


async def test_cancel_mid_run_applies_nothing(project, tmp_path):
    editor = await start_editor(tmp_path / "state", {"budget": {"metric": "samples", "samples": 8}})
    try:
        uri, text, arg = await open_emptied_chunk(editor, project)

        # $/cancelRequest
        task = asyncio.ensure_future(editor.command("budgetpass.generateUntilPass", arg,
                                                    msg_id="job-1"))
        await wait_for_progress(editor)
        editor.client.protocol.notify("$/cancelRequest", types.CancelParams(id="job-1"))
        with pytest.raises(Exception, match="cancel"):
            await asyncio.wait_for(task, 60)
        # The job really stopped: the next one may start (one job per document at a time).
        deadline = asyncio.get_running_loop().time() + 30
        while not any("cancelled" in m.message for m in editor.client.messages):
            assert asyncio.get_running_loop().time() < deadline, "job did not stop"
            await asyncio.sleep(0.05)

        # Cancel from the progress UI.
        editor.client.progress_reports.clear()
        task = asyncio.ensure_future(editor.command("budgetpass.generateUntilPass", arg))
        token = await wait_for_progress(editor)
        editor.client.window_work_done_progress_cancel(
            types.WorkDoneProgressCancelParams(token=token))
        result = await asyncio.wait_for(task, 60)
        assert result["status"] == "cancelled" and not result["applied"]
        assert editor.applied_edits == [] and editor.texts[uri] == text
    finally:
        await editor.client.shutdown_session()


async def test_settings_change_changes_k_and_a_racing_edit_is_not_clobbered(project, tmp_path):
    editor = await start_editor(tmp_path / "state", {"budget": {"metric": "samples",
                                                                "samples": 3}})
    try:
        uri, text, arg = await open_emptied_chunk(editor, project)

        first = await editor.command("budgetpass.showCandidates", arg)
        assert first["budget"]["samples"] == 3 and len(first["candidates"]) == 3
        assert not first["applied"] and editor.applied_edits == []

        editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"budgetpass": {"budget": {"samples": 2}, "sandbox": "nonsense"}}))
        await asyncio.sleep(0.3)
        assert any("budgetpass.sandbox" in m.message for m in editor.client.messages)

        editor.client.progress_reports.clear()
        task = asyncio.ensure_future(editor.command("budgetpass.generateUntilPass", arg))
        await wait_for_progress(editor)
        typed = text.replace("import re\n", "import re\nimport string\n")
        editor.change(uri, typed)  # the user types while the job runs
        result = await asyncio.wait_for(task, 120)
        assert result["budget"]["samples"] == 2 and len(result["candidates"]) == 2
        assert result["sandbox"] in ("bwrap", "process")  # the invalid value was not taken
        assert not result["applied"] and "changed while the job ran" in result["note"]
        assert editor.applied_edits == [] and editor.texts[uri] == typed
        assert any("nothing applied" in m.message for m in editor.client.messages)
    finally:
        await editor.client.shutdown_session()


async def test_a_failed_run_shows_its_failing_test_above_the_function(project, tmp_path):
    add_an_impossible_test_for_initials(project)
    editor = await start_editor(tmp_path / "state", {"budget": {"metric": "samples",
                                                                "samples": 2}})
    try:
        uri, text, row = await open_at_initials(editor, project)
        arg = {"uri": uri, "position": {"line": row, "character": 4}}
        result = await editor.command("budgetpass.generateUntilPass", arg)
        assert result["status"] == "failed" and not result["applied"]
        assert editor.applied_edits == [] and editor.texts[uri] == text
        assert any("FAILED" in m.message for m in editor.client.messages)
        lenses = await editor.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        at_initials = [lens.command.title for lens in lenses if lens.range.start.line == row]
        assert at_initials[0] == "▶ Generate until tests pass (1 test)"
        assert at_initials[1].startswith(
            "✗ last run failed: tests/test_impossible.py::test_initials_is_never_this")
        shown = await editor.command("budgetpass.showCandidates", arg)
        assert len(shown["candidates"]) == 2 and shown["status"] == "failed"
    finally:
        await editor.client.shutdown_session()


async def test_anytime_spends_its_seconds_and_progress_counts_candidates(project, tmp_path):
    add_an_impossible_test_for_initials(project)
    # Short candidates (24 tokens: they fail anyway), so that a batch of 2 takes a few seconds
    # even on a loaded 2-core machine and 12 s hold more than one.
    editor = await start_editor(tmp_path / "state", {"budget": {
        "metric": "samples", "samples": 2, "anytime": True, "seconds": 12},
        "sampling": {"maxTokens": 24}})
    try:
        uri, text, row = await open_at_initials(editor, project)
        result = await editor.command("budgetpass.generateUntilPass",
                                      {"uri": uri, "position": {"line": row, "character": 4}})
        assert result["status"] == "failed" and not result["applied"]
        used = result["budget_used"]
        assert used["given_seconds"] == 12 and used["samples"] > 2, used
        assert result["pipeline"]["batches"] == used["samples"] // 2
        assert len(result["candidates"]) == used["samples"]
        reports = [r for values in editor.client.progress_reports.values() for r in values
                   if isinstance(r, types.WorkDoneProgressReport)]
        percentages = [r.percentage for r in reports if r.percentage is not None]
        assert percentages == sorted(percentages), "the progress bar never goes back"
        counted = [r.message for r in reports if (r.message or "").startswith("candidate ")]
        assert counted and all("0 passing" in m for m in counted)
        assert any(f"sampling {used['samples']} candidates" in (r.message or "")
                   for r in reports), "the candidate count grows with each batch"
        assert any("generate-until-pass" in m.message and "budget 12 s" in m.message
                   for m in editor.client.messages)
    finally:
        await editor.client.shutdown_session()
