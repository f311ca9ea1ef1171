"""Find the project's tests that exercise a function, by reading files (nothing is run).

A test is selected when it names the function (a call, ``f`` imported with ``from m import f``,
``m.f``, ``self.f``; for a method, the method's name in a file that names its class) directly or
through a fixture (in the test file or a ``conftest.py`` above it) whose body does. pytest-style
functions and classes, ``unittest.TestCase`` subclasses and parametrized tests are all collected by
their pytest node id. The examples (``>>>``) in the function's own docstring are a test too: pytest
runs them as a doctest item.
"""

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


def iter_python_files(root: Path):
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


def iter_test_files(root: Path):
    return (p for p in iter_python_files(root) if is_test_file(p.name))


def _mentions(node: ast.AST, name: str) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == name:
            return True
        if isinstance(sub, ast.Attribute) and sub.attr == name:
            return True
    return False


def _imports_name(tree: ast.Module, name: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            return True
    return False


def _is_fixture(node: ast.AST) -> bool:
    for deco in getattr(node, "decorator_list", []):
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
                isinstance(target, ast.Name) and target.id == "fixture"):
            return True
    return False


def _arg_names(node) -> set[str]:
    args = node.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


def _is_test_class(node: ast.ClassDef) -> bool:
    return node.name.startswith("Test") or any(_mentions(b, "TestCase") for b in node.bases)


def _tests_in(tree: ast.Module):
    """(node id suffix, node, class node or None) for pytest-collectable functions and methods."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node.name, node, None
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    yield f"{node.name}::{item.name}", item, node


def _fixtures(tree: ast.Module) -> dict[str, ast.AST]:
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_fixture(node):
            found[node.name] = node
    return found


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
        return None  # pytest will report a broken test file itself if it is selected another way


def _conftests(root: Path, test_file: Path) -> list[Path]:
    folders = [test_file.parent, *test_file.parent.parents]
    return [f / "conftest.py" for f in folders
            if (f == root or root in f.parents) and (f / "conftest.py").is_file()]


def _fixtures_using(fixtures: dict[str, ast.AST], uses) -> set[str]:
    """Fixture names whose body uses the target, directly or through other such fixtures."""
    chosen = {name for name, node in fixtures.items() if uses(node)}
    while True:
        more = {name for name, node in fixtures.items()
                if name not in chosen and _arg_names(node) & chosen}
        if not more:
            return chosen
        chosen |= more


def module_name_of(root: Path, path: Path) -> str:
    """Dotted name pytest gives the module: up through folders that are packages."""
    parts = [path.stem]
    folder = path.parent
    while folder != root and (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def doctest_node_id(root: Path, target_file: Path, function_name: str) -> str | None:
    """The pytest node id of the doctest in the function's docstring, if it has ``>>>`` lines."""
    import doctest

    tree = _parse(target_file)
    if tree is None:
        return None
    parts = function_name.split(".")
    body, node = tree.body, None
    for part in parts:
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                        ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
        body = node.body
    doc = ast.get_docstring(node) or ""
    try:
        if not doctest.DocTestParser().get_examples(doc):
            return None
    except ValueError:
        return None
    rel = target_file.relative_to(root).as_posix()
    return f"{rel}::{module_name_of(root, target_file)}.{function_name}"


def find_tests(root: Path, function_name: str, target_file: Path | None = None) -> SelectedTests:
    """Tests that exercise ``function_name`` (``name`` or ``Class.method``), as pytest node ids.

    A test file that imports the name but whose tests never name it (helpers, module-level
    fixtures) is selected whole. With ``target_file``, the docstring's doctest is added.
    """
    root = Path(root)
    parts = function_name.split(".")
    short, owner = parts[-1], (parts[-2] if len(parts) > 1 else None)
    node_ids: list[str] = []
    files: list[str] = []
    for path in iter_test_files(root):
        tree = _parse(path)
        if tree is None:
            continue
        if owner and not _mentions(tree, owner):
            continue  # a method is reached through its class (or an instance the file makes)
        fixtures: dict[str, ast.AST] = {}
        for conftest in reversed(_conftests(root, path)):
            conf_tree = _parse(conftest)
            if conf_tree is not None and (not owner or _mentions(conf_tree, owner)):
                fixtures.update(_fixtures(conf_tree))
        fixtures.update(_fixtures(tree))
        using = _fixtures_using(fixtures, lambda node: _mentions(node, short))
        rel = path.relative_to(root).as_posix()
        hits = []
        for suffix, node, cls in _tests_in(tree):
            setup_uses = cls is not None and any(
                isinstance(m, ast.FunctionDef) and m.name in ("setUp", "setup_method")
                and _mentions(m, short) for m in cls.body)
            if _mentions(node, short) or _arg_names(node) & using or setup_uses:
                hits.append(f"{rel}::{suffix}")
        if not hits and _imports_name(tree, short):
            hits = [rel]
        if hits:
            node_ids.extend(hits)
            files.append(rel)
    if target_file is not None:
        doctest_id = doctest_node_id(root, Path(target_file), function_name)
        if doctest_id:
            node_ids.append(doctest_id)
            files.append(doctest_id.split("::")[0])
    return SelectedTests(tuple(node_ids), tuple(files))


def test_imports(root: Path, node_ids) -> set[str]:
    """Top-level modules the selected test files and their conftest.py files import.

    The warm worker imports these once (it skips the project's own modules), so that each
    candidate's fork finds e.g. numpy or hypothesis already loaded.
    """
    root = Path(root)
    names: set[str] = set()
    paths: set[Path] = set()
    for node_id in node_ids:
        path = root / node_id.split("::")[0]
        if path.is_file():
            paths.add(path)
            paths.update(_conftests(root, path))
    for path in paths:
        tree = _parse(path)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n.isidentifier()}


test_imports.__test__ = False  # a helper, not a test, for pytest
