"""`budgetpass serve` through faults of its host: a model that cannot load, an HTTP backend that
dies mid-stream, a test suite that hangs, a sandbox binary that vanishes. Each time a clear message
reaches the editor, the server keeps serving, and the next request works once the cause is gone."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal

import pytest
from lsprotocol import types

from tests.llama_server import free_port, start_server, stop_server
from tests.server.lsp_session import start_editor
from tests.server.test_generate_cli import double_project

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

ONE_SAMPLE = {"budget": {"metric": "samples", "samples": 1}, "sampling": {"maxTokens": 24},
              "inline": {"debounceMs": 0, "maxTokens": 8}}
PASSING_TEST = "from mod import double\n\n\ndef test_double():\n    assert double(2) == 4\n"


def target(uri: str) -> dict:
    return {"uri": uri, "position": {"line": 0, "character": 4}}  # def double(x):


async def until(check, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.05)


async def lenses(editor, uri):
    return await editor.client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))


async def test_a_truncated_model_file_is_shown_then_a_good_model_serves(tmp_path, smol_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(smol_path.read_bytes()[:1 << 20])  # a download cut short: no tensors
    project = double_project(tmp_path / "p", PASSING_TEST)
    editor = await start_editor(tmp_path / "state", {**ONE_SAMPLE, "model": str(broken)})
    try:
        uri = editor.open(project / "mod.py")
        failed = await editor.wait_status("failed", timeout=60)
        assert str(broken) in failed["message"] and "could not open model" in failed["message"]
        assert "set budgetpass.model" in failed["message"]
        assert any(m.type == types.MessageType.Error and str(broken) in m.message
                   for m in editor.client.messages)  # window/showMessage, not only the log
        with pytest.raises(Exception, match="broken.gguf"):
            await editor.command("budgetpass.generateUntilPass", target(uri))
        assert len(await lenses(editor, uri)) == 1  # still serving

        editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"budgetpass": {**ONE_SAMPLE, "model": "smollm2-135m"}}))
        await editor.wait_status("ready", timeout=90)
        result = await editor.command("budgetpass.showCandidates", target(uri))
        assert len(result["candidates"]) == 1 and result["tests"]
    finally:
        await editor.client.shutdown_session()


async def test_an_http_backend_killed_mid_stream_is_named_and_its_restart_serves(tmp_path,
                                                                                 smol_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(smol_path, port)
    project = double_project(tmp_path / "p", PASSING_TEST)
    settings = {**ONE_SAMPLE, "backend": "openai", "endpoint": url, "model": "135M",
                "budget": {"metric": "samples", "samples": 4}, "sampling": {"maxTokens": 400}}
    editor = await start_editor(tmp_path / "state", settings)
    try:
        uri = editor.open(project / "mod.py")
        await editor.wait_status("ready", timeout=60)
        job = asyncio.ensure_future(editor.command("budgetpass.showCandidates", target(uri)))
        await until(lambda: any(" 0 tokens" not in str(report) and "tokens" in str(report)
                                for reports in editor.client.progress_reports.values()
                                for report in reports), "tokens streaming", 120)
        server.send_signal(signal.SIGKILL)
        server.wait()
        with pytest.raises(Exception, match=str(port)) as caught:
            await asyncio.wait_for(job, 60)
        assert "Traceback" not in str(caught.value) and "failed:" not in str(caught.value), \
            caught.value  # a fault the user can mend, not an internal error
        assert len(await lenses(editor, uri)) == 1  # still serving

        server = start_server(smol_path, port)
        editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"budgetpass": {**settings, "sampling": {"maxTokens": 16}}}))  # quick now
        result = await asyncio.wait_for(
            editor.command("budgetpass.showCandidates", target(uri)), 180)
        assert len(result["candidates"]) == 4
    finally:
        await editor.client.shutdown_session()
        stop_server(server)


async def test_a_hanging_test_suite_ends_at_the_timeout_and_the_server_serves_on(tmp_path,
                                                                                  qwen_path):
    project = double_project(tmp_path / "hang", "import time\nfrom mod import double\n\n\n"
                             "def test_double():\n    time.sleep(3600)\n"
                             "    assert double(2) == 4\n")
    editor = await start_editor(tmp_path / "state", {
        **ONE_SAMPLE, "model": "qwen2.5-coder-0.5b", "budget": {"metric": "samples", "samples": 2},
        "sampling": {"maxTokens": 48}, "tests": {"timeoutSeconds": 3}})
    try:
        uri = editor.open(project / "mod.py")
        await editor.wait_ready()
        start = asyncio.get_running_loop().time()
        result = await asyncio.wait_for(
            editor.command("budgetpass.generateUntilPass", target(uri)), 90)
        assert asyncio.get_running_loop().time() - start < 60
        assert result["status"] == "failed" and result["applied"] is False
        outcomes = [o["outcome"] for c in result["candidates"] if c["tested"]
                    for o in c["outcomes"]]
        assert outcomes and set(outcomes) == {"timeout"}, result["candidates"]
        await until(lambda: any("FAILED" in m.message.upper() for m in editor.client.messages),
                    "message about the failed run", 10)
        # The hang is fixed on disk: the next job tests against the new suite.
        (project / "test_mod.py").write_text(PASSING_TEST)
        result = await asyncio.wait_for(
            editor.command("budgetpass.generateUntilPass", target(uri)), 90)
        outcomes = [o["outcome"] for c in result["candidates"] if c["tested"]
                    for o in c["outcomes"]]
        assert outcomes and "timeout" not in outcomes, result["candidates"]
    finally:
        await editor.client.shutdown_session()


async def test_bwrap_breaking_under_a_running_server_is_named_and_auto_falls_back(tmp_path,
                                                                                 smol_path):
    """The server finds bwrap through PATH (a folder holding a link to it); while the server runs
    the link is replaced by a bwrap that fails, as a broken upgrade would. (bwrap *removed* from
    the host is tests/app/test_worker_faults.py: the worker's PATH would find /usr/bin/bwrap.)"""
    real = shutil.which("bwrap")
    if real is None:
        pytest.skip("bwrap is not installed here")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "bwrap").symlink_to(real)
    project = double_project(tmp_path / "p", PASSING_TEST)
    editor = await start_editor(tmp_path / "state", {**ONE_SAMPLE, "model": "smollm2-135m"},
                                env={"PATH": f"{tools}:{os.environ['PATH']}"})
    try:
        uri = editor.open(project / "mod.py")
        await editor.wait_ready()
        # (generateUntilPass, not showCandidates: that one answers from the last run)
        first = await editor.command("budgetpass.generateUntilPass", target(uri))
        assert first["sandbox"] == "bwrap", first
        (tools / "bwrap").unlink()
        (tools / "bwrap").write_text("#!/bin/sh\necho 'bwrap: broken install' >&2\nexit 1\n")
        (tools / "bwrap").chmod(0o755)
        os.utime(project / "mod.py", (1, 1))  # a changed project: the warm worker restarts
        with pytest.raises(Exception, match="broken install") as caught:
            await editor.command("budgetpass.generateUntilPass", target(uri))
        assert "try sandbox 'process'" in str(caught.value)
        assert await lenses(editor, uri)  # still serving (a failed first run adds a lens)
        second = await editor.command("budgetpass.generateUntilPass", target(uri))
        assert second["sandbox"] == "process"
        assert any("UNSANDBOXED" in w and "bwrap does not work here" in w
                   for w in second["warnings"]), second["warnings"]
    finally:
        await editor.client.shutdown_session()
