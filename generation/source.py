"""Find a function in a Python file and cut its body out, so a model can fill it and we can splice."""

from __future__ import annotations

import ast
import functools
import re
import textwrap
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
    """The file's syntax tree (shared: callers must not change it)."""
    return _parsed(text, filename)


@functools.lru_cache(maxsize=8)
def _parsed(text: str, filename: str) -> ast.Module:
    # A large module takes a second to parse here; a prompt and its job parse it several times.
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


@dataclass(frozen=True)
class Body:
    """A generated body after ``normalize_body``: ``text`` to splice, or ``problem`` saying why
    nothing usable came out (``text`` then holds what was salvaged, for reports)."""

    text: str
    problem: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem


# Chat models wrap code in a fence and sometimes talk around it.
_FENCE = re.compile(r"^[ \t]*```[\w+-]*[ \t]*$", re.MULTILINE)


def _unfenced(text: str) -> str:
    """The code of a reply: what lies before a closing fence (a prefilled reply continues inside
    the fence), or the first fenced block when the reply opens one after some chatter."""
    fences = list(_FENCE.finditer(text))
    if not fences:
        return text
    first = fences[0]
    before = text[: first.start()]
    if before.strip() and not _looks_like_chatter(before):
        return before  # code, then the closing fence
    if len(fences) >= 2:
        return text[first.end() + 1 : fences[1].start()]
    return text[first.end() + 1 :]  # an opened block that the token limit cut


def _looks_like_chatter(text: str) -> bool:
    """Prose rather than code: a line that reads as a sentence and does not parse."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].startswith((" ", "\t")):
        return False
    try:
        ast.parse(textwrap.dedent(text))
        return False
    except SyntaxError:
        return True


def _inside_def(text: str, name: str) -> str | None:
    """The body of ``def name(...)`` when the model rewrote the whole function, else None."""
    if not name:
        return None
    lines = text.splitlines(keepends=True)
    pattern = re.compile(rf"^[ \t]*(async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(")
    for number, line in enumerate(lines):
        if not pattern.match(line):
            continue
        rest = "".join(lines[number:])
        try:
            node = ast.parse(textwrap.dedent(rest)).body[0]
        except (SyntaxError, IndexError):
            # Cut at the first line that does not parse: keep what does.
            return None
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        body = node.body[1:] if ast.get_docstring(node, clean=False) is not None else node.body
        if not body:
            return ""
        first = body[0].lineno - 1
        last = node.end_lineno
        return "".join(lines[number + first : number + last])
    return None


def normalize_body(generated: str, site: FunctionSite, typed_indent: str = "") -> Body:
    """The one tidy-up of a generated body, for every prompt style and request kind.

    Strips code fences and chat chatter, takes the body out of a rewritten whole function,
    re-indents a body written at column 0, cuts it where the function ends (the first line
    dedented to the def), and says why a body is unusable: empty, a stub, only comments.
    ``typed_indent``: the reply continues a line already indented by this (inline completion).
    """
    text = _unfenced(generated.replace("\r\n", "\n"))
    whole = _inside_def(text, site.qualname.rsplit(".", 1)[-1])
    if whole is not None:
        text = whole
    text = typed_indent + text
    def_width = len(site.def_indent)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if first and len(first) - len(first.lstrip()) <= def_width and not _top_level_start(first):
        # Written at the def's column (or at column 0): shift the whole block to the body's.
        block = textwrap.dedent("\n".join(_until_top_level(lines)))
        lines = [site.body_indent + ln if ln.strip() else "" for ln in block.splitlines()]
    kept: list[str] = []
    for line in lines:
        if line.strip() and len(line) - len(line.lstrip()) <= def_width:
            break  # dedented to the def's level (or further): the function is over
        kept.append(line.rstrip())
    while kept and not kept[-1].strip():
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    body = "\n".join(kept) + "\n" if kept else ""
    return Body(body, unusable_reason(body))


def _top_level_start(line: str) -> bool:
    """A line that begins the next top-level thing rather than a body statement."""
    return line.lstrip().startswith(("def ", "async def ", "class ", "@", "if __name__"))


def _until_top_level(lines: list[str]) -> list[str]:
    """A column-0 body ends where the next definition or a ``__main__`` guard starts."""
    kept = []
    for line in lines:
        if kept and line.strip() and not line[:1].isspace() and _top_level_start(line):
            break
        kept.append(line)
    return kept


def unusable_reason(body: str) -> str:
    """Why a tidied body cannot be a candidate ("" when it can)."""
    if not body.strip():
        return "empty body"
    code = [ln.strip() for ln in body.splitlines() if ln.strip()]
    if all(ln.startswith("#") for ln in code):
        return "only comments"
    if is_stub(body):
        return "a stub, not an implementation"
    return ""


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
        statements = node.body[1:] if ast.get_docstring(node, clean=False) is not None \
            else node.body
        # One parse for the whole file: a large module has thousands of functions.
        body = "".join(lines[statements[0].lineno - 1 : node.end_lineno]) if statements else ""
        if statements and statements[0].lineno > node.lineno and body.strip() and is_stub(body):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            end = node.end_lineno
            while end < len(lines) and not lines[end].strip():
                end += 1  # and the blank lines after it
            cuts.append((offsets[first - 1], offsets[end]))
    for start, end in sorted(cuts, reverse=True):
        text = text[:start] + text[end:]
    return text
