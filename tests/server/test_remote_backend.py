"""The product on backend ``openai``: the CLI and the language server drive a REAL llama.cpp server
(``python -m llama_cpp.server`` on loopback, Qwen2.5-Coder 0.5B) instead of an in-process model.

That server ignores ``n`` (one round per candidate) and, asked for log-probabilities, sorts the
whole vocabulary in Python for every token (~0.3 s a token here, ten times its decoding): the jobs
draw 2 candidates, enough for the 0.5B's first sample of ``chunk`` to pass."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, tree_digest
from tests.llama_server import free_port, start_server, stop_server
from tests.server.lsp_session import start_editor
from tests.server.test_generate_cli import generate, passes_outside_the_tool
from tests.server.test_lsp_e2e import open_emptied_chunk, run_tests

CHUNK_TESTS = [f"tests/test_text.py::test_chunk_{t}" for t in ("even", "remainder", "empty")]


@pytest.fixture(scope="module")
def endpoint(qwen_path):
    port = free_port()
    proc = start_server(qwen_path, port, threads=2)
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dest


@pytest.mark.slow
def test_generate_through_a_server_gives_a_passing_body(endpoint, qwen_path, project):
    proc = generate(project / "textkit/text.py::chunk", "--backend", "openai", "--endpoint",
                    endpoint, "--budget-metric", "samples", "--samples", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "passed", report["message"]
    model = report["model"]
    assert (model["backend"], model["endpoint"], model["served_model"]) == (
        "openai", endpoint, str(qwen_path))
    assert model["template"] == "qwen2.5-coder" and "server reports" in model["template_reason"]
    # Token counts come from the server's logprobs.tokens: never zero for a real body.
    assert all(c["tokens"] >= 1 for c in report["candidates"] if c["body"].strip())
    assert report["tests"] == CHUNK_TESTS
    assert passes_outside_the_tool(project, "textkit/text.py", "chunk", report["selected_body"],
                                   report["tests"])


@pytest.mark.slow
def test_a_server_model_without_a_known_size_asks_for_one(endpoint, project):
    proc = generate(project / "textkit/text.py::chunk", "--endpoint", endpoint, "--model",
                    "my-finetune", "--json")
    assert proc.returncode == 2
    assert "set model to a known name" in proc.stderr and "parameter count" in proc.stderr


def test_an_unreachable_server_is_named_and_nothing_is_written(project):
    before = tree_digest(project)
    url = f"http://127.0.0.1:{free_port()}"
    proc = generate(project / "textkit/text.py::chunk", "--endpoint", url, "--write",
                    timeout=120)
    assert proc.returncode == 2
    assert f"cannot connect to {url}: connection refused" in proc.stderr, proc.stderr
    assert tree_digest(project) == before


@pytest.mark.slow
@pytest.mark.asyncio
async def test_language_server_on_backend_openai_applies_a_passing_body(endpoint, project,
                                                                        tmp_path):
    editor = await start_editor(tmp_path / "state", {
        "backend": "openai", "endpoint": endpoint, "model": "0.5B",
        "budget": {"metric": "samples", "samples": 2}, "inline": {"debounceMs": 0}})
    try:
        on_disk = tree_digest(project)
        uri, text, arg = await open_emptied_chunk(editor, project)
        assert any("ready (openai" in m.message and "template qwen2.5-coder" in m.message
                   for m in editor.client.log_messages)
        row = arg["position"]["line"]
        one_line = await editor.inline(uri, row - 2, len("def chunk(items: list, "))
        assert one_line is not None and all("\n" not in i.insert_text for i in one_line.items)

        result = await editor.command("budgetpass.generateUntilPass", arg)
        assert result["status"] == "passed", result["message"]
        assert result["applied"] and result["model"]["backend"] == "openai"
        assert len(editor.applied_edits) == 1
        assert tree_digest(project) == on_disk  # the editor holds the edit, the disk is untouched
        outcome = run_tests(project, editor.texts[uri])
        assert outcome.returncode == 0, outcome.stdout[-2000:]
    finally:
        await editor.client.shutdown_session()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_language_server_names_an_unreachable_server_and_uses_it_once_it_is_up(
        project, tmp_path, smol_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    editor = await start_editor(tmp_path / "state", {"backend": "openai", "endpoint": url,
                                                     "model": "135M",
                                                     "budget": {"metric": "samples",
                                                                "samples": 1}})
    server = None
    try:
        path = project / "textkit" / "text.py"
        text = path.read_text()
        uri = editor.open(path, text)
        deadline = asyncio.get_running_loop().time() + 30
        while not any(url in m.message for m in editor.client.messages):
            assert asyncio.get_running_loop().time() < deadline, editor.client.messages
            await asyncio.sleep(0.05)
        shown = next(m.message for m in editor.client.messages if url in m.message)
        assert "connection refused" in shown and "Start the server" in shown
        row = text.split("\n").index("def chunk(items: list, size: int) -> list:")
        arg = {"uri": uri, "position": {"line": row, "character": 4}}
        with pytest.raises(Exception, match=f"cannot connect to {url}"):
            await editor.command("budgetpass.generateUntilPass", arg)
        assert editor.applied_edits == [] and editor.texts[uri] == text

        # The server comes up (SmolLM2: its name tells no FIM template): the next job uses it and
        # says that prompts fell back to plain left-to-right.
        server = start_server(smol_path, port)
        result = await editor.command("budgetpass.showCandidates", arg)
        assert result["model"]["served_model"] == str(smol_path)
        assert result["model"]["template"] == "plain" and len(result["candidates"]) == 1
        assert any("names no known code-model family" in w and "set template" in w
                   for w in result["warnings"])
        assert editor.applied_edits == [] and editor.texts[uri] == text
    finally:
        await editor.client.shutdown_session()
        if server is not None:
            stop_server(server)
