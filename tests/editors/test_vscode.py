"""The VS Code extension (.vsix) in real VS Code (code-server) driven by headless Chromium,
against the real server and 0.5B model. `make editors` installs code-server and builds the .vsix."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from budgetpass.generation.source import locate_function

from tests.conftest import REPO
from tests.editors.conftest import NODE_BIN, SERVER, editor_env, run_pytest_on_copy, sha256

HARNESS = REPO / "tests" / "editors" / "harness"
CODE_SERVER = HARNESS / "node_modules" / ".bin" / "code-server"
VSIX = REPO / "editors" / "vscode" / "budgetpass.vsix"
SOURCE = "textkit/text.py"
SCREENSHOTS = REPO / "editors" / "screenshots"  # shown in the README


def prerequisites() -> None:
    missing = [
        what
        for what, ok in (
            ("node 20 (run `make editors`)", shutil.which(
                "node", path=os.pathsep.join([str(NODE_BIN), os.environ.get("PATH", "")]))),
            ("chromium (apt-get install chromium)", Path("/usr/bin/chromium").exists()),
            (f"{CODE_SERVER} (run `make editors`)", CODE_SERVER.exists()),
            (f"{VSIX} (run `make editors`)", VSIX.exists()),
        )
        if not ok
    ]
    if missing:
        pytest.fail("VS Code end-to-end test needs: " + ", ".join(missing))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def code_server(project: Path, tmp_path: Path, qwen_path, request):
    """code-server with the .vsix installed in a scratch profile, serving `project`; an indirect
    parameter (a dict) adds user settings."""
    prerequisites()
    env = editor_env(tmp_path / "home")
    data, extensions = tmp_path / "user-data", tmp_path / "extensions"
    dirs = ["--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    install = subprocess.run(
        [str(CODE_SERVER), *dirs, "--install-extension", str(VSIX)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    settings = {
        "files.autoSave": "off",
        "security.workspace.trust.enabled": False,
        "workbench.startupEditor": "none",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "telemetry.telemetryLevel": "off",
        "budgetpass.server.path": str(SERVER),
        "budgetpass.budget.metric": "samples",
        "budgetpass.budget.samples": 6,
        "budgetpass.inline.enable": False,
        **getattr(request, "param", {}),
    }
    (data / "User").mkdir(parents=True, exist_ok=True)
    (data / "User" / "settings.json").write_text(json.dumps(settings, indent=2))
    port = free_port()
    log = (tmp_path / "code-server.log").open("w")
    proc = subprocess.Popen(
        [
            str(CODE_SERVER),
            *dirs,
            "--auth",
            "none",
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-workspace-trust",
            "--disable-getting-started-override",
            str(project),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/?folder={project}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(
                "code-server did not come up: " + (tmp_path / "code-server.log").read_text()[-2000:]
            )
        yield url, env
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def chunk_source(project: Path) -> tuple[Path, str, list[str], int]:
    """(source path, its digest, its lines, the 0-based line of `def chunk`)."""
    path = project / SOURCE
    lines = path.read_text().splitlines()
    SCREENSHOTS.mkdir(exist_ok=True)
    return path, sha256(path), lines, next(i for i, t in enumerate(lines) if t.startswith("def chunk"))


def drive(url: str, env: dict, line: int, timeout_s: int, shot: Path, mode: str) -> dict:
    """Run the playwright driver in one mode; what the editor showed (its JSON)."""
    run = subprocess.run(
        ["node", str(HARNESS / "drive-vscode.mjs"), url, "text.py", str(line), str(timeout_s),
         str(shot), mode],
        env=env, capture_output=True, text=True, timeout=600, cwd=HARNESS, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    print(run.stderr[-2000:])  # shown by pytest -rP
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_generate_from_the_command_palette_fills_the_editor(code_server, project, tmp_path):
    url, env = code_server
    path = project / SOURCE
    on_disk = sha256(path)
    line = (
        path.read_text()
        .splitlines()
        .index(next(t for t in path.read_text().splitlines() if t.startswith("def chunk")))
        + 2
    )
    shot = tmp_path / "vscode.png"
    drive = subprocess.run(
        ["node", str(HARNESS / "drive-vscode.mjs"), url, "text.py", str(line), "400", str(shot)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HARNESS,
        check=False,
    )
    assert drive.returncode == 0, drive.stderr[-3000:]
    shown = json.loads(drive.stdout.strip().splitlines()[-1])
    print(drive.stderr[-2000:], f"summary: {shown.get('summary')}", sep="\n")  # shown by pytest -rP
    assert shown["ok"], f"{shown} / {drive.stderr[-3000:]} (screenshot: {shot})"
    assert "PASSED" in shown["summary"], shown["summary"]
    assert any("budgetpass" in s for s in shown["statusTexts"]), shown["statusTexts"]
    assert shown["readyStatus"].endswith("budgetpass · qwen2.5-coder-0.5b"), shown["readyStatus"]

    text = "\n".join(shown["lines"]) + "\n"
    site = locate_function(text, "chunk")
    body = text[site.body_start : site.body_end]
    assert "NotImplementedError" not in body and body.strip(), text
    assert shown["tabDirty"], "the editor should hold an unsaved change"
    assert sha256(path) == on_disk, "the file on disk changed although nothing was saved"
    run = run_pytest_on_copy(project, SOURCE, text, "-k", "chunk")
    assert run.returncode == 0 and "3 passed" in run.stdout, run.stdout + run.stderr


def squeeze(s: str) -> str:
    return "".join(s.split())


@pytest.mark.slow
@pytest.mark.parametrize("code_server", [{"budgetpass.inline.enable": True,
                                          "budgetpass.budget.samples": 10,
                                          "budgetpass.inline.verifyWithinMs": 600000}],
                         indirect=True)
def test_inline_items_cycle_show_their_tests_and_the_accepted_one_passes(code_server, project):
    url, env = code_server
    path, on_disk, lines, chunk = chunk_source(project)
    stub = next(i for i in range(chunk, len(lines)) if "raise NotImplementedError" in lines[i])
    shot = SCREENSHOTS / "vscode-inline.png"
    shown = drive(url, env, stub + 1, 540, shot, "inline")
    assert shown["ok"] and shown["ghost"], f"no ghost text: {shown} (screenshot: {shot})"
    assert shown["ghostAfterTab"] == 0, "Tab should accept the ghost text"
    # Two or more items, tested ones first, each outcome in the status bar in cycling order.
    outcomes = shown["inlineOutcomes"]
    assert outcomes.startswith("budgetpass · inline 1: ✓ 3/3 tests · 2: "), outcomes
    # Alt+] shows the second item; Alt+[ goes back (VS Code may keep the second: what Tab then
    # accepts is what was shown, checked below, not which item it was).
    assert shown["ghostSecond"] and squeeze("".join(shown["ghost"])) != squeeze(
        shown["ghostSecond"]), shown

    text = "\n".join(shown["lines"]) + "\n"
    site = locate_function(text, "chunk")
    body = text[site.body_start : site.body_end]
    assert "NotImplementedError" not in body, text
    # What was shown when Tab was pressed is what went in (ghost text comes as coloured spans, a
    # multi-line one not in line order).
    pieces = [squeeze(p) for p in shown["ghostBack"].split("\n") if p.strip()]
    assert pieces and all(p in squeeze(body) for p in pieces), (shown["ghostBack"], body)
    assert shown["tabDirty"], "the accepted completion is an unsaved change"
    assert sha256(path) == on_disk, "the file on disk changed although nothing was saved"
    run = run_pytest_on_copy(project, SOURCE, text, "-k", "chunk")
    assert run.returncode == 0 and "3 passed" in run.stdout, run.stdout + run.stderr


@pytest.mark.slow
def test_the_picker_lists_test_outcomes_and_applies_the_chosen_candidate(code_server, project):
    url, env = code_server
    path, on_disk, _lines, chunk = chunk_source(project)
    shot = SCREENSHOTS / "vscode-picker.png"
    shown = drive(url, env, chunk + 2, 540, shot, "picker")
    assert shown["ok"], f"{shown} (screenshot: {shot})"
    rows = shown["pickerRows"]
    assert len(rows) >= 2 and any("✓ 3/3 tests" in r for r in rows), rows
    text = "\n".join(shown["lines"]) + "\n"
    site = locate_function(text, "chunk")
    assert "NotImplementedError" not in text[site.body_start : site.body_end], text
    assert shown["tabDirty"] and sha256(path) == on_disk
    run = run_pytest_on_copy(project, SOURCE, text, "-k", "chunk")
    assert run.returncode == 0 and "3 passed" in run.stdout, run.stdout + run.stderr
