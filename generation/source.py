"""A function's body cut out of a file (``locate`` finds it), tidied, and spliced back in."""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from .locate import FunctionSite, SourceError, functions, is_stub, locate_function, parse_python

__all__ = ["Body", "FunctionSite", "SourceError", "is_stub", "locate_function", "normalize_body",
           "parse_python", "splice_body", "without_stub_bodies"]


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


def without_stub_bodies(text: str, keep: str) -> str:
    """``text`` without the other functions whose bodies are stubs.

    A small model imitates what it sees: stubs beside the hole make it write a stub, and a
    signature with an empty body at the end of the suffix makes it fill that function instead.
    """
    parse_python(text)
    lines = text.split("\n")
    cuts = []
    for site in functions(text):
        name = site.qualname
        if name == keep or "<locals>" in name or keep.startswith(name + "."):
            continue
        body = text[site.body_start : site.body_end]
        if body.strip() and is_stub(body):
            end = site.end_line + 1
            while end < len(lines) and not lines[end].strip():
                end += 1  # and the blank lines after it
            cuts.append((_line_start(lines, site.start_line), _line_start(lines, end)))
    for start, end in sorted(cuts, reverse=True):
        text = text[:start] + text[end:]
    return text


def _line_start(lines: list[str], row: int) -> int:
    return sum(len(line) + 1 for line in lines[:row])
