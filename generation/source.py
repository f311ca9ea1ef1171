"""A function's body cut out of a file (``locate`` finds it), tidied, and spliced back in."""

from __future__ import annotations

from .locate import FunctionSite, SourceError, functions, is_stub, locate_function, parse_python

__all__ = ["FunctionSite", "SourceError", "is_stub", "locate_function", "normalize_body",
           "parse_python", "splice_body", "without_stub_bodies"]


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
