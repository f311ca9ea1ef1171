"""`budgetpass serve` keeps serving through bad input, big or foreign documents and odd clients."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import EXAMPLE
from tests.server.lsp_session import start_editor

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

FAST = {"model": "smollm2-135m", "inline": {"debounceMs": 0, "maxTokens": 8}}


@pytest.fixture
def project(tmp_path: Path, smol_path) -> Path:
    dest = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dest


async def lenses(editor, uri):
    return await editor.client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))


async def test_malformed_params_and_unknown_commands_get_errors_and_the_server_lives(project,
                                                                                      tmp_path):
    editor = await start_editor(tmp_path / "state", FAST)
    try:
        uri = editor.open(project / "textkit" / "text.py")
        with pytest.raises(JsonRpcException, match="malformed params"):
            await editor.raw_request("textDocument/inlineCompletion",
                                     {"textDocument": 5, "position": "x"}, "bad-1")
        with pytest.raises(JsonRpcException, match="not defined"):
            await editor.raw_request("workspace/executeCommand", {"command": 7}, "bad-2")
        with pytest.raises(Exception, match="not defined"):
            await editor.command("budgetpass.noSuchCommand", {})
        with pytest.raises(Exception, match="position must be"):
            await editor.command("budgetpass.generateUntilPass", {"uri": uri, "position": [1, 2]})
        with pytest.raises(Exception, match="expected one argument"):
            await editor.command("budgetpass.generateUntilPass")
        with pytest.raises(Exception, match="not open in the editor"):
            await editor.command("budgetpass.generateUntilPass",
                                 {"uri": "file:///nowhere/x.py", "position": {"line": 0,
                                                                             "character": 0}})
        with pytest.raises(Exception, match="no function at line 1"):
            await editor.command("budgetpass.generateUntilPass",
                                 {"uri": uri, "position": {"line": 0, "character": 0}})
        with pytest.raises(JsonRpcException, match="Method Not Found"):
            await editor.raw_request("budgetpass/noSuchMethod", {}, "bad-3")
        assert len(await lenses(editor, uri)) == 3  # still serving
        log = (tmp_path / "state" / "budgetpass" / "server.log").read_text()
        assert "no function at line 1" in log
        assert any("no function at line 1" in m.message for m in editor.client.log_messages)
    finally:
        await editor.client.shutdown_session()


async def test_a_50k_line_document_and_a_non_python_document(project, tmp_path):
    editor = await start_editor(tmp_path / "state", FAST)
    try:
        big = project / "textkit" / "big.py"
        body = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(12_500))
        text = body + "def last(x):\n    return x"
        assert text.count("\n") >= 50_000
        big.write_text(text)
        uri = editor.open(big, text)
        await editor.wait_ready()
        start = time.monotonic()
        found = await lenses(editor, uri)
        # Generous bounds: they catch a hang or quadratic work, not speed (bench/lsp_latency.py).
        assert not found and time.monotonic() - start < 60  # no tests name these helpers
        start = time.monotonic()
        result = await editor.inline(uri, text.count("\n"), len("    return x"))
        assert time.monotonic() - start < 60
        assert result is not None, "a 50k-line document still gets an answer"
        assert all("\n" not in i.insert_text for i in result.items)

        notes = project / "NOTES.md"
        notes.write_text("# Notes\n\ndef looks_like_python():\n    \n")
        md = editor.open(notes, language="markdown")
        assert await editor.inline(md, 3, 4) is None
        assert not await lenses(editor, md)
        with pytest.raises(Exception, match="not a Python document"):
            await editor.command("budgetpass.generateUntilPass",
                                 {"uri": md, "position": {"line": 3, "character": 4}})
    finally:
        await editor.client.shutdown_session()


async def test_rapid_open_change_close_with_requests_in_flight(project, tmp_path):
    editor = await start_editor(tmp_path / "state", FAST)
    try:
        path = project / "textkit" / "text.py"
        original = path.read_text()
        await editor.wait_ready()
        pending = []
        for i in range(60):
            uri = editor.open(path, original)
            for j in range(3):
                editor.change(uri, original + f"\nvalue_{i}_{j} = {j}")
                pending.append(asyncio.ensure_future(
                    editor.inline(uri, original.count("\n") + 1, 5)))
            pending.append(asyncio.ensure_future(lenses(editor, uri)))
            editor.close(uri)
        results = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 120)
        errors = [r for r in results if isinstance(r, Exception) and "cancel" not in str(r).lower()]
        assert errors == []
        uri = editor.open(path, original)
        assert len(await lenses(editor, uri)) == 3
    finally:
        await editor.client.shutdown_session()


async def test_a_client_that_never_answers_configuration_does_not_stall_the_server(project,
                                                                                    tmp_path):
    editor = await start_editor(tmp_path / "state", FAST, answer_configuration=False)
    try:
        uri = editor.open(project / "textkit" / "text.py")
        start = time.monotonic()
        assert len(await lenses(editor, uri)) == 3
        assert time.monotonic() - start < 2
        await editor.wait_ready()
        deadline = time.monotonic() + 10
        while not any("did not answer workspace/configuration" in m.message
                      for m in editor.client.log_messages):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        await editor.client.shutdown_session()


async def test_requests_before_the_model_is_ready_return_empty_fast_with_one_message(project,
                                                                                      tmp_path):
    editor = await start_editor(tmp_path / "state", {"model": "no-such-model",
                                                     "inline": {"debounceMs": 0}})
    try:
        path = project / "textkit" / "text.py"
        uri = editor.open(path)
        for _ in range(3):
            start = time.monotonic()
            assert await editor.inline(uri, 2, 0) is None
            assert time.monotonic() - start < 1
        await asyncio.sleep(0.5)
        about_model = [m.message for m in editor.client.messages if "no-such-model" in m.message]
        assert 1 <= len(about_model) <= 2  # the load failure, and at most one "not ready" note
        assert any("budgetpass models fetch" in m for m in about_model)
        failed = await editor.wait_status("failed", timeout=5)  # what a status bar shows
        assert failed["model"] == "no-such-model" and "budgetpass models fetch" in failed["message"]
        assert [s["state"] for s in editor.statuses] == ["loading", "failed"]
    finally:
        await editor.client.shutdown_session()


async def test_completion_fallback_is_advertised_only_when_enabled(project, tmp_path):
    plain = await start_editor(tmp_path / "state", FAST)
    try:
        caps = plain.server_capabilities
        assert caps.completion_provider is None and caps.inline_completion_provider is not None
        assert caps.code_lens_provider is not None
        assert set(caps.execute_command_provider.commands) == {
            "budgetpass.generateUntilPass", "budgetpass.showCandidates"}
    finally:
        await plain.client.shutdown_session()
    editor = await start_editor(tmp_path / "state", {**FAST, "completion": {"enable": True}})
    try:
        caps = editor.server_capabilities
        assert caps.completion_provider is not None
        path = project / "textkit" / "text.py"
        text = path.read_text() + "\n\ndef double(x):\n    return x"
        uri = editor.open(path, text)
        await editor.wait_ready()
        result = await editor.client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=text.count("\n"), character=len("    return x"))))
        assert result is not None
        for item in result.items:
            assert item.text_edit is not None and "\n" not in item.text_edit.new_text
    finally:
        await editor.client.shutdown_session()


async def test_code_lenses_follow_the_test_files_the_client_reports(project, tmp_path):
    """The server indexes the workspace's tests at start and watches *.py: a new test file counts
    once the client reports it (didChangeWatchedFiles), without re-reading every test file."""
    editor = await start_editor(tmp_path / "state", FAST, root=project)
    try:
        uri = editor.open(project / "textkit" / "text.py")
        assert len(await lenses(editor, uri)) == 3  # initials has no test yet
        # The server asks to watch once initialized, in its own time (a loaded machine: later).
        deadline = time.monotonic() + 10
        while not editor.registrations and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert [r.method for r in editor.registrations] == ["workspace/didChangeWatchedFiles"]
        new = project / "tests" / "test_initials.py"
        new.write_text("from textkit.text import initials\n\n\ndef test_initials():\n"
                       "    assert initials('ada lovelace') == 'AL'\n")
        assert len(await lenses(editor, uri)) == 3  # watched: the server waits to be told
        editor.client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=new.as_uri(), type=types.FileChangeType.Created)]))
        deadline = time.monotonic() + 10
        while len(found := await lenses(editor, uri)) != 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert [lens.command.title for lens in found].count(
            "▶ Generate until tests pass (1 test)") == 1, [lens.command.title for lens in found]
    finally:
        await editor.client.shutdown_session()
