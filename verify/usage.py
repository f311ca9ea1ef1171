"""How the selected tests call a function: the lines of those tests that name it, and the first
cases they are parametrized with. The prompt shows them to the model (``prompt.show_tests``): a
docstring rarely says that ``ordinal`` is given strings, and the tests that judge the body do.

Read from the project's own test files (trusted code, like the tests the judge runs), parsed, never
run. Bounded: a few lines, each cut short, so the code around the body keeps its room.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .discovery import is_test_file

MAX_LINES = 10
LINE_CHARS = 160
CASES_SHOWN = 3


def test_calls(root: Path, node_ids, function: str) -> tuple[str, ...]:
    """Up to ``MAX_LINES`` lines: per selected test that names the function, its parametrize
    cases (``cases (a, b): (1, 2), (3, 4), ...``) and its statements that name it."""
    short = function.rsplit(".", 1)[-1]
    wanted: dict[str, set[str]] = {}
    for node in node_ids:
        file, _, rest = node.partition("::")
        if rest and is_test_file(file.rsplit("/", 1)[-1]):
            wanted.setdefault(file, set()).add(rest.split("::")[-1].split("[")[0])
    lines: list[str] = []
    for file, names in wanted.items():
        try:
            text = (root / file).read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, ValueError, SyntaxError):
            continue
        constants = _module_constants(tree)
        for test in ast.walk(tree):
            if isinstance(test, (ast.FunctionDef, ast.AsyncFunctionDef)) and test.name in names:
                naming = _naming(test, text, short)  # a test that never names it shows nothing
                for line in (_cases(test, text, constants) + naming) if naming else []:
                    if line not in lines:
                        lines.append(line)
    return tuple(lines[:MAX_LINES])


test_calls.__test__ = False  # a helper, not a test, for pytest


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level ``NAME = [...]`` / ``(...)``: what a parametrize names instead of listing."""
    found = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name) \
                and isinstance(stmt.value, (ast.List, ast.Tuple)):
            found[stmt.targets[0].id] = stmt.value
    return found


def _cases(test, text: str, constants) -> list[str]:
    out = []
    for decorator in test.decorator_list:
        if not (isinstance(decorator, ast.Call) and len(decorator.args) >= 2
                and _dotted(decorator.func).endswith("parametrize")):
            continue
        names, values = decorator.args[0], decorator.args[1]
        if isinstance(values, ast.Name):
            values = constants.get(values.id, values)
        if not isinstance(values, (ast.List, ast.Tuple)):
            continue
        shown = [_segment(text, v) for v in values.elts[:CASES_SHOWN]]
        more = ", ..." if len(values.elts) > CASES_SHOWN else ""
        out.append(_cut(f"cases {_segment(text, names)}: {', '.join(shown)}{more}"))
    return out


def _naming(test, text: str, short: str) -> list[str]:
    """The test's simple statements that mention ``short`` (a call, an attribute, a reference)."""
    found = []
    for stmt in ast.walk(test):
        if isinstance(stmt, (ast.Assert, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr,
                             ast.Return)) and any(
                (isinstance(n, ast.Name) and n.id == short)
                or (isinstance(n, ast.Attribute) and n.attr == short) for n in ast.walk(stmt)):
            found.append((stmt.lineno, _cut(_segment(text, stmt))))
    return [line for _, line in sorted(found)]


def _dotted(node) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _segment(text: str, node) -> str:
    return " ".join((ast.get_source_segment(text, node) or "").split())


def _cut(line: str) -> str:
    return line if len(line) <= LINE_CHARS else line[:LINE_CHARS - 3] + "..."
