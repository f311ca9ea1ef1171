"""Real editors driven headless against the real `budgetpass serve` and the real 0.5B model.

`make editors` (a prerequisite of `make test`) installs what these need: Neovim 0.12 and pynvim
from pip, code-server + playwright-core from npm, the .vsix built from editors/vscode.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, REPO

PLUGIN_NVIM = REPO / "editors" / "nvim"
VENV_BIN = Path(sys.executable).parent
NODE_BIN = VENV_BIN.parent / "node20" / "bin"  # node 20 from PyPI (scripts/node20.sh)
SERVER = VENV_BIN / "budgetpass"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def editor_env(home: Path) -> dict[str, str]:
    """A scratch HOME/XDG so editors write nothing into the user's; models stay in the real cache."""
    from budgetpass.generation import models

    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        env[var] = str(home / var.lower())
        Path(env[var]).mkdir(parents=True, exist_ok=True)
    env["BUDGETPASS_CACHE"] = str(models.cache_dir().parent)
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(NODE_BIN), str(VENV_BIN), env.get("PATH", "")])
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the example project (stubs + tests)."""
    dest = tmp_path / "textkit"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dest


def run_pytest_on_copy(
    project: Path, rel_file: str, text: str, *pytest_args: str
) -> subprocess.CompletedProcess:
    """Run plain pytest on a copy of the project whose file holds `text` (no budgetpass involved)."""
    copy = project.parent / (project.name + "-check")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project, copy)
    (copy / rel_file).write_text(text)
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(copy, ignore_errors=True)
