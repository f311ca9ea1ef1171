"""Find a function in a Python file and cut its body out, so a model can fill it and we can splice."""

from __future__ import annotations

import ast
from dataclasses import dataclass


class SourceError(ValueError):
    """The file or function cannot be used; the message names the problem and where it is."""


@dataclass(frozen=True)
class FunctionSite:
    """Where a function's body lies in a file's text.

    ``body_start``..``body_end`` (character offsets) covers the statements after the signature and
    docstring: what a candidate replaces. Everything before is the prompt's prefix, everything after
    its suffix.
    """

    qualname: str
    def_line: int  # 1-based line of the ``def``
    def_indent: str
    body_indent: str
    body_start: int
    body_end: int
    docstring: str | None


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def parse_python(text: str, filename: str = "<file>") -> ast.Module:
    try:
        return ast.parse(text, filename=filename)
    except SyntaxError as exc:
        where = f"{filename}:{exc.lineno}:{exc.offset or 0}"
        raise SourceError(f"{where}: syntax error: {exc.msg}; fix the file before generating") from exc


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            qualname = prefix + node.name
            yield qualname, node
            yield from _functions(node, qualname + ".<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")


def locate_function(text: str, qualname: str, filename: str = "<file>") -> FunctionSite:
    tree = parse_python(text, filename)
    matches = [node for name, node in _functions(tree) if name == qualname]
    if not matches:
        names = [name for name, _ in _functions(tree) if "<locals>" not in name]
        hint = f"; functions in the file: {', '.join(names)}" if names else "; the file has no functions"
        raise SourceError(f"{filename}: no function named {qualname!r}{hint}")
    if len(matches) > 1:
        lines = ", ".join(str(node.lineno) for node in matches)
        raise SourceError(f"{filename}: {qualname!r} is defined more than once (lines {lines})")
    node = matches[0]
    lines = text.splitlines(keepends=True)
    offsets = _line_offsets(text)
    def_text = lines[node.lineno - 1]
    def_indent = def_text[: len(def_text) - len(def_text.lstrip())]
    docstring = ast.get_docstring(node, clean=False)
    body = list(node.body)
    if docstring is not None:
        header_end_line = body.pop(0).end_lineno  # the docstring's last line
    else:
        header_end_line = _signature_end_line(node, lines)
    if body and body[0].lineno <= header_end_line:
        raise SourceError(
            f"{filename}:{node.lineno}: the body of {qualname!r} shares a line with its signature; "
            "put the body on its own lines"
        )
    body_start = offsets[header_end_line]
    if body:
        last_line = max(getattr(n, "end_lineno", n.lineno) for n in body)
        body_end = offsets[last_line]
        first = lines[body[0].lineno - 1]
        body_indent = first[: len(first) - len(first.lstrip())]
    else:
        body_end = body_start
        body_indent = def_indent + "    "
    if body_start == len(text) and not text.endswith("\n"):
        raise SourceError(f"{filename}: add a newline after {qualname!r}'s signature")
    return FunctionSite(
        qualname=qualname,
        def_line=node.lineno,
        def_indent=def_indent,
        body_indent=body_indent,
        body_start=body_start,
        body_end=body_end,
        docstring=docstring,
    )


def _signature_end_line(node: ast.AST, lines: list[str]) -> int:
    """The line holding the ``:`` that ends the ``def`` header."""
    first_stmt = node.body[0]
    # The header ends on the line before the first statement, unless the statement shares it.
    line = first_stmt.lineno - 1
    if line >= node.lineno:
        return line
    return node.lineno


def normalize_body(generated: str, site: FunctionSite) -> str:
    """Cut a generated body where the function ends (first line dedented to the def) and tidy it."""
    kept: list[str] = []
    for line in generated.splitlines():
        stripped = line.strip()
        if stripped and len(line) - len(line.lstrip()) <= len(site.def_indent):
            break  # dedented to the def's level (or further): the function is over
        kept.append(line.rstrip())
    while kept and not kept[-1].strip():
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(kept) + "\n" if kept else ""


def splice_body(text: str, site: FunctionSite, body: str) -> str:
    if body and not body.endswith("\n"):
        body += "\n"
    return text[: site.body_start] + body + text[site.body_end :]


STUB_STATEMENTS = {"pass", "...", "raise NotImplementedError", "raise NotImplementedError()"}


def is_stub(body: str) -> bool:
    """A body that only defers the work (what the function had before generation)."""
    lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return all(ln in STUB_STATEMENTS for ln in lines)


def without_stub_bodies(text: str, keep: str) -> str:
    """``text`` without the other functions whose bodies are stubs.

    A small model imitates what it sees: stubs beside the hole make it write a stub, and a
    signature with an empty body at the end of the suffix makes it fill that function instead.
    """
    tree = parse_python(text)
    lines = text.splitlines(keepends=True)
    offsets = _line_offsets(text)
    cuts = []
    for name, node in _functions(tree):
        if name == keep or "<locals>" in name or keep.startswith(name + "."):
            continue
        site = locate_function(text, name)
        body = text[site.body_start : site.body_end]
        if body.strip() and is_stub(body):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            end = node.end_lineno
            while end < len(lines) and not lines[end].strip():
                end += 1  # and the blank lines after it
            cuts.append((offsets[first - 1], offsets[end]))
    for start, end in sorted(cuts, reverse=True):
        text = text[:start] + text[end:]
    return text
