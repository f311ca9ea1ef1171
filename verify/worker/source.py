"""Which functions cross: the candidate may change function bodies only; the judge's copy of
the module forwards each changed one to the executor. And what the project's own modules and
test files are."""

from __future__ import annotations

import ast
import os


def function_defs(tree: ast.Module) -> list:
    """Functions and methods at module and class level, in source order (not nested in bodies)."""
    found = []

    def walk(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append(node)
            elif isinstance(node, ast.ClassDef):
                walk(node.body)
    walk(tree.body)
    return found


def forwarded_defs(original: str, candidate: str) -> list[int]:
    """Indices (in ``function_defs`` order) of the functions whose body the candidate changed; ValueError
    if it changed anything outside function bodies (signatures, decorators, imports, classes)."""
    trees = [ast.parse(original), ast.parse(candidate)]
    bodies = []
    for tree in trees:
        defs = function_defs(tree)
        bodies.append([ast.dump(ast.Module(body=d.body, type_ignores=[])) for d in defs])
        for d in defs:
            d.body = [ast.Pass()]
    if ast.dump(trees[0]) != ast.dump(trees[1]):
        raise ValueError("the candidate changes the module outside function bodies")
    return [i for i, (a, b) in enumerate(zip(*bodies)) if a != b]


def judge_source(original: str, indices: list[int]) -> str:
    """The trusted module with each forwarded function's statements replaced by a forwarder call
    (docstring, signature, decorators and line numbers kept)."""
    tree = ast.parse(original)
    defs = function_defs(tree)
    lines = original.splitlines(keepends=True)
    edits = []
    for i in indices:
        node = defs[i]
        body = node.body
        doc = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
               and isinstance(body[0].value.value, str))
        call = f"return __budgetpass_forward__({i}, {_call_args(node.args)})"
        if doc and len(body) == 1:
            end = body[0]
            edits.append((end.end_lineno, end.end_col_offset, end.end_lineno, end.end_col_offset,
                          f"; {call}"))
            continue
        first = body[1] if doc else body[0]
        last = body[-1]
        pad = "\n" * (last.end_lineno - first.lineno)
        edits.append((first.lineno, first.col_offset, last.end_lineno, last.end_col_offset,
                      call + pad))
    for start_line, start_col, end_line, end_col, text in sorted(edits, reverse=True):
        head = lines[start_line - 1].encode()[:start_col].decode()
        tail = lines[end_line - 1].encode()[end_col:].decode()
        lines[start_line - 1:end_line] = [head + text + tail]
    return "".join(lines)


def _call_args(args: ast.arguments) -> str:
    positional = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg:
        positional.append("*" + args.vararg.arg)
    keywords = [f"{a.arg!r}: {a.arg}" for a in args.kwonlyargs]
    if args.kwarg:
        keywords.append("**" + args.kwarg.arg)
    return f"({', '.join(positional)}{',' if len(positional) == 1 else ''}), {{{', '.join(keywords)}}}"


def module_name(rel_file: str, base: str) -> str:
    parts = rel_file[:-3].split("/")
    if parts[0] == "src" and len(parts) > 1 and os.path.isdir(os.path.join(base, "src")):
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def project_modules(folder: str) -> set[str]:
    """Top-level module names the project itself defines (in its root and in src/)."""
    names = set()
    for place in (folder, os.path.join(folder, "src")):
        try:
            entries = os.listdir(place)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".py"):
                names.add(entry[:-3])
            elif os.path.isdir(os.path.join(place, entry)) and entry.isidentifier():
                names.add(entry)
    return names
