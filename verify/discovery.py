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
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from budgetpass.generation.locate import FunctionSite

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


def _names(node: ast.AST) -> set[str]:
    """Every name the code under ``node`` uses: ``x`` and the ``attr`` of ``obj.attr``."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
    return found


def _is_fixture(node: ast.AST) -> bool:
    for deco in getattr(node, "decorator_list", []):
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
                isinstance(target, ast.Name) and target.id == "fixture"):
            return True
    return False


def _arg_names(node) -> frozenset[str]:
    args = node.args
    return frozenset(a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs])


@dataclass(frozen=True)
class Usage:
    """A test or a fixture: the names its code uses and the fixtures it asks for."""

    name: str  # node id suffix for a test (``Class::test``), the fixture's name for a fixture
    names: frozenset[str]
    args: frozenset[str]
    setup_names: frozenset[str] = frozenset()  # used by its unittest class's setUp/setup_method


@dataclass(frozen=True)
class FileSummary:
    """What selection needs from a test file or a conftest.py, read once (see ``verify.index``)."""

    names: frozenset[str]  # every name the file uses
    imported: frozenset[str]  # names imported with ``from m import name``
    modules: frozenset[str]  # top-level modules it imports
    tests: tuple[Usage, ...]  # pytest-collectable functions and methods, in file order
    fixtures: tuple[Usage, ...]  # in ast.walk order (a later one of the same name wins)

    def to_json(self) -> list:
        return [sorted(self.names), sorted(self.imported), sorted(self.modules),
                [_usage_json(u) for u in self.tests], [_usage_json(u) for u in self.fixtures]]

    @classmethod
    def from_json(cls, data: list) -> FileSummary:
        names, imported, modules, tests, fixtures = data
        return cls(frozenset(names), frozenset(imported), frozenset(modules),
                   tuple(_usage(u) for u in tests), tuple(_usage(u) for u in fixtures))


def _usage_json(usage: Usage) -> list:
    return [usage.name, sorted(usage.names), sorted(usage.args), sorted(usage.setup_names)]


def _usage(data: list) -> Usage:
    name, names, args, setup = data
    return Usage(name, frozenset(names), frozenset(args), frozenset(setup))


def _is_test_class(node: ast.ClassDef) -> bool:
    return node.name.startswith("Test") or any("TestCase" in _names(b) for b in node.bases)


def summarize(tree: ast.Module) -> FileSummary:
    tests = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            tests.append(Usage(node.name, frozenset(_names(node)), _arg_names(node)))
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            setup = frozenset().union(*(_names(m) for m in node.body if isinstance(m, ast.FunctionDef)
                                        and m.name in ("setUp", "setup_method")))
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    tests.append(Usage(f"{node.name}::{item.name}", frozenset(_names(item)),
                                       _arg_names(item), setup))
    names, imported, modules, fixtures = set(), set(), set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update(a.name for a in node.names)
            if node.module and not node.level:
                modules.add(node.module.split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_fixture(node):
            fixtures.append(Usage(node.name, frozenset(_names(node)), _arg_names(node)))
    return FileSummary(frozenset(names), frozenset(imported),
                       frozenset(n for n in modules if n.isidentifier()), tuple(tests),
                       tuple(fixtures))


def read_summary(path: Path) -> FileSummary | None:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
        return None  # pytest will report a broken test file itself if it is selected another way
    return summarize(tree)


def _fixtures_using(fixtures: dict[str, Usage], short: str) -> set[str]:
    """Fixture names whose body uses the target, directly or through other such fixtures."""
    chosen = {name for name, fixture in fixtures.items() if short in fixture.names}
    while True:
        more = {name for name, fixture in fixtures.items()
                if name not in chosen and fixture.args & chosen}
        if not more:
            return chosen
        chosen |= more


def select_in_file(rel: str, summary: FileSummary, conftests: list[FileSummary], short: str,
                   owner: str | None) -> list[str]:
    """Node ids in one test file for function ``short`` (of class ``owner``); ``conftests`` from
    the root down to the file's folder."""
    if owner and owner not in summary.names:
        return []  # a method is reached through its class (or an instance the file makes)
    if short not in summary.names and short not in summary.imported and \
            not any(short in c.names for c in conftests):
        return []  # nothing in the file or its fixtures can name it
    fixtures: dict[str, Usage] = {}
    for conftest in conftests:
        if not owner or owner in conftest.names:
            fixtures.update((f.name, f) for f in conftest.fixtures)
    fixtures.update((f.name, f) for f in summary.fixtures)
    using = _fixtures_using(fixtures, short)
    hits = [f"{rel}::{test.name}" for test in summary.tests
            if short in test.names or test.args & using or short in test.setup_names]
    if not hits and short in summary.imported:
        hits = [rel]
    return hits


def package_root(root: Path, path: Path) -> Path:
    """The folder pytest puts on ``sys.path`` to import ``path``: up through package folders."""
    folder = path.parent
    while folder != root and (folder / "__init__.py").exists():
        folder = folder.parent
    return folder


def module_name(root: Path, path: Path) -> str:
    """The dotted name pytest imports ``path`` under: up through folders that are packages; a
    package's ``__init__.py`` is the package."""
    rel = path.relative_to(package_root(root, path)).with_suffix("")
    parts = list(rel.parts)
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# The doctest option flags pytest's doctest runner knows (``_pytest.doctest._get_flag_lookup``).
PYTEST_DOCTEST_FLAGS = {"DONT_ACCEPT_TRUE_FOR_1", "DONT_ACCEPT_BLANKLINE", "NORMALIZE_WHITESPACE",
                        "ELLIPSIS", "IGNORE_EXCEPTION_DETAIL", "COMPARISON_FLAGS", "ALLOW_UNICODE",
                        "ALLOW_BYTES", "NUMBER"}


def doctests_blocked(root: Path) -> str | None:
    """Why pytest cannot run this project's doctests, if it cannot: its configuration names a
    doctest option flag pytest does not know (sympy's FLOAT_CMP, for its own doctest runner), and
    then collecting any module's doctests stops the whole run, the project's real tests with it.
    Read again only when a configuration file changes."""
    stamps = []
    for name, _ in PYTEST_CONFIG_FILES:
        try:
            stat = (root / name).stat()
            stamps.append((name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            pass
    return _doctests_blocked(root, tuple(stamps))


PYTEST_CONFIG_FILES = (("pytest.ini", "pytest"), (".pytest.ini", "pytest"), ("pyproject.toml", None),
                       ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest"))


@functools.lru_cache(maxsize=64)
def _doctests_blocked(root: Path, stamps: tuple) -> str | None:
    if _pytest_setting(root, "doctest_plus") == ["enabled"]:
        return None  # pytest-doctestplus collects the doctests, and it knows its own flags
    flags = _pytest_setting(root, "doctest_optionflags")
    unknown = sorted({f for f in flags if f not in PYTEST_DOCTEST_FLAGS})
    if unknown:
        return (f"the project's doctest_optionflags name {', '.join(unknown)}, which pytest's "
                "doctest runner does not know (the project runs its doctests another way)")
    return None


def _pytest_setting(root: Path, name: str) -> list[str]:
    """A list setting from the project's pytest configuration file (the first that pytest would
    read, as in the worker's judge), split on whitespace; [] when unset or unreadable."""
    import configparser

    import tomllib

    for file, section in PYTEST_CONFIG_FILES:
        path = root / file
        if not path.is_file():
            continue
        try:
            if section is None:
                tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
                table = tool.get("pytest", {})
                table = table.get("ini_options", table) if isinstance(table, dict) else {}
                if not table:
                    continue
                value = table.get(name, [])
            else:
                parser = configparser.ConfigParser(interpolation=None)
                parser.read_string(path.read_text(encoding="utf-8"))
                if not parser.has_section(section):
                    if file.endswith("pytest.ini"):
                        return []  # pytest reads a pytest.ini even without its section
                    continue
                value = parser.get(section, name, fallback="")
        except (OSError, ValueError, configparser.Error):
            return []
        values = value if isinstance(value, list) else str(value).split()
        return [str(v) for v in values]
    return []


def doctest_node_id(root: Path, target_file: Path, function_name: str,
                    site: FunctionSite | None) -> str | None:
    """The pytest node id of the doctest in the function's docstring, if it has ``>>>`` lines
    (``site``: the function as located in ``target_file``) and pytest can run the project's
    doctests (``doctests_blocked``)."""
    import doctest
    import inspect

    if site is None or not site.docstring or "<locals>" in function_name:
        return None
    try:
        if not doctest.DocTestParser().get_examples(inspect.cleandoc(site.docstring)):
            return None
    except ValueError:
        return None
    if doctests_blocked(root):  # last: it reads the project's configuration
        return None
    rel = target_file.relative_to(root).as_posix()
    return f"{rel}::{module_name(root, target_file)}.{function_name}"


def find_tests(root: Path, function_name: str, target_file: Path | None = None) -> SelectedTests:
    """Tests that exercise ``function_name`` (``name`` or ``Class.method``), as pytest node ids.

    A test file that imports the name but whose tests never name it (helpers, module-level
    fixtures) is selected whole. With ``target_file``, the docstring's doctest is added. The test
    files are read once per process and then only when they change (``verify.index``).
    """
    from .index import project_index

    return project_index(root).find_tests(function_name, target_file)


def test_imports(root: Path, node_ids) -> set[str]:
    """Top-level modules the selected test files and their conftest.py files import.

    The warm worker imports these once (it skips the project's own modules), so that each
    candidate's fork finds e.g. numpy or hypothesis already loaded.
    """
    from .index import project_index

    return project_index(root).test_imports(node_ids)


test_imports.__test__ = False  # a helper, not a test, for pytest
