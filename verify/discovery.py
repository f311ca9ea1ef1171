"""Find the project's tests that exercise a function, by reading test files (nothing is run)."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__",
             ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist",
             "site-packages"}


@dataclass(frozen=True)
class SelectedTests:
    node_ids: tuple[str, ...]  # pytest node ids relative to the project root
    files: tuple[str, ...]


def is_test_file(name: str) -> bool:
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def iter_test_files(root: Path):
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if is_test_file(name):
                yield Path(folder) / name


def _mentions(node: ast.AST, name: str) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == name:
            return True
        if isinstance(sub, ast.Attribute) and sub.attr == name:
            return True
    return False


def _imported_names(tree: ast.Module) -> set[str]:
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def _tests_in(tree: ast.Module):
    """(node id suffix, node) for pytest-collectable test functions and methods."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test") or (
            isinstance(node, ast.ClassDef) and any(_mentions(b, "TestCase") for b in node.bases)
        ):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    yield f"{node.name}::{item.name}", item


def find_tests(root: Path, function_name: str) -> SelectedTests:
    """Tests whose body names the function (a call, ``m.f``, ``self.f``).

    ``function_name`` is the last part of a qualified name. A test file that imports the name but
    whose tests never name it directly (helpers, fixtures) is selected whole.
    """
    return find_tests_for(root, [function_name])[function_name.split(".")[-1]]


def _names(node: ast.AST) -> set[str]:
    return {sub.id if isinstance(sub, ast.Name) else sub.attr for sub in ast.walk(node)
            if isinstance(sub, (ast.Name, ast.Attribute))}


def find_tests_for(root: Path, function_names) -> dict[str, SelectedTests]:
    """``find_tests`` for many names in one pass over the test files (e.g. a code lens per
    function of a large file); keys are the names' last parts."""
    shorts = {name.split(".")[-1] for name in function_names}
    node_ids: dict[str, list[str]] = {s: [] for s in shorts}
    files: dict[str, list[str]] = {s: [] for s in shorts}
    for path in iter_test_files(root):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue  # pytest will report a broken test file itself if it is selected another way
        rel = path.relative_to(root).as_posix()
        tests = [(f"{rel}::{suffix}", _names(node)) for suffix, node in _tests_in(tree)]
        imported = _imported_names(tree)
        for short in shorts:
            hits = [node_id for node_id, names in tests if short in names]
            if not hits and short in imported:
                hits = [rel]
            if hits:
                node_ids[short].extend(hits)
                files[short].append(rel)
    return {s: SelectedTests(tuple(node_ids[s]), tuple(files[s])) for s in shorts}
