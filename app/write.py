"""Putting a selected body back: into the file (CLI ``--write``), or as the edit an editor applies.

The user's file is written only when the request's write policy says so, only the function's body,
and never if the file changed since the request read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from budgetpass.generation.source import splice_body

from .report import Report, SolveError
from .target import locate, read


def write_selected(report: Report) -> None:
    """Replace only the function's body, refusing if the file changed since the request read it."""
    if report.selected_body is None:
        raise SolveError("no candidate was selected; nothing was written")
    path = Path(report.file)
    current = read(path)
    if current != report.source_text:
        raise SolveError(f"{path} changed while the request ran; nothing was written")
    site = locate(current, report.function, path)
    new_text = splice_body(current, site, report.selected_body)
    tmp = path.with_name(f".{path.name}.budgetpass.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
    report.written = True


@dataclass(frozen=True)
class BodyEdit:
    """Offsets in the text that replacing the body covers, and the text to put there."""

    start: int
    end: int
    new_text: str


def body_range(text: str, function: str) -> tuple[int, int] | None:
    """(start, end) offsets of the function's body in ``text``; None if it is not there."""
    try:
        site = locate(text, function)
    except SolveError:
        return None
    return site.body_start, site.body_end


def body_edit(text: str, function: str, body: str) -> BodyEdit:
    """The edit that replaces ``function``'s body with ``body``; an emptied body also takes the
    indentation left on its blank lines."""
    site = locate(text, function)
    end = site.body_end
    if site.body_start == site.body_end:
        while True:
            line_end = text.find("\n", end)
            line = text[end:line_end]
            if line_end < 0 or not line or line.strip():
                break
            end = line_end + 1
    return BodyEdit(site.body_start, end, body if body.endswith("\n") else body + "\n")
