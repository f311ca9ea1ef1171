"""Conversions between LSP types and the application layer's: positions and offsets, command
arguments, proposals, lenses and edits. No state, no I/O."""

from __future__ import annotations

from pathlib import Path

from budgetpass.app.complete import Completions
from budgetpass.app.report import Report, first_failure
from budgetpass.app.write import BodyEdit
from budgetpass.generation.locate import FunctionSite
from lsprotocol import types
from pygls.uris import to_fs_path

GENERATE = "budgetpass.generateUntilPass"
SHOW_CANDIDATES = "budgetpass.showCandidates"
INLINE_STATUS = "budgetpass.inlineStatus"  # run by the client when an inline item is accepted


class UserError(Exception):
    """A request that cannot be served as asked; the message says why and what to do."""


def is_python(doc) -> bool:
    return doc.language_id == "python" or doc.uri.endswith((".py", ".pyi"))


def file_path(uri: str) -> Path | None:
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return Path(path) if path else None


def offset(doc, position: types.Position) -> int:
    if position.line >= len(doc.lines):
        return len(doc.source)
    return doc.offset_at_position(position)


def position(doc, text: str, at: int) -> types.Position:
    """The client's position of offset ``at`` in ``text`` (the client's units: UTF-16 for most)."""
    line = text.count("\n", 0, at)
    start = text.rfind("\n", 0, at) + 1
    return doc.position_codec.position_to_client_units(
        text.splitlines(keepends=True) or [""], types.Position(line=line, character=at - start))


def to_range(doc, text: str, start: int, end: int) -> types.Range:
    return types.Range(start=position(doc, text, start), end=position(doc, text, end))


def command_target(args: tuple) -> tuple[str, types.Position]:
    """(uri, position) from a command's ``[{uri, position}]`` or ``[uri, position]``."""
    if len(args) == 1 and isinstance(args[0], dict):
        uri, pos = args[0].get("uri"), args[0].get("position")
    elif len(args) == 2:
        uri, pos = args
    else:
        raise UserError("expected one argument {uri, position}")
    if not isinstance(pos, dict) or not all(isinstance(pos.get(k), int) and pos.get(k) >= 0
                                            for k in ("line", "character")):
        raise UserError("position must be {line, character} with whole numbers >= 0")
    if not isinstance(uri, str):
        raise UserError("uri must be a string")
    return uri, types.Position(line=pos["line"], character=pos["character"])


def inline_list(doc, result: Completions) -> types.InlineCompletionList:
    """The proposals, each carrying its test outcome where editors show it: the title of the
    item's command ("✓ 3/3 tests"), which the client runs when the item is accepted."""
    return types.InlineCompletionList(items=[
        types.InlineCompletionItem(
            insert_text=c.text, range=to_range(doc, doc.source, c.start, c.end),
            command=types.Command(title=c.label, command=INLINE_STATUS, arguments=[{
                "uri": doc.uri, "version": doc.version, "index": i, "status": c.status,
                "passed": c.passed or 0, "total": c.tests}]))
        for i, c in enumerate(result.items)])


def completion_list(doc, result: Completions) -> types.CompletionList:
    items = []
    for rank, cand in enumerate(result.items):
        first = cand.text.strip().splitlines()[0] if cand.text.strip() else cand.text
        items.append(types.CompletionItem(
            label=first[:60], kind=types.CompletionItemKind.Snippet,
            detail="budgetpass" + (" (tests pass)" if cand.verified else ""),
            sort_text=f"{rank:03d}", filter_text=first,
            text_edit=types.TextEdit(range=to_range(doc, doc.source, cand.start, cand.end),
                                     new_text=cand.text)))
    return types.CompletionList(is_incomplete=True, items=items)


def code_lenses(uri: str, found: list[tuple[FunctionSite, tuple[str, ...]]],
                last_runs: dict[tuple[str, str], Report]) -> list[types.CodeLens]:
    """A "generate" lens per tested function, and one naming the last run's failure."""
    lenses = []
    for fn, tests in found:
        at = types.Range(start=types.Position(line=fn.def_line, character=0),
                         end=types.Position(line=fn.def_line, character=0))
        arg = {"uri": uri, "position": {"line": fn.def_line, "character": fn.def_column}}
        lenses.append(types.CodeLens(range=at, command=types.Command(
            title=f"▶ Generate until tests pass ({len(tests)} test{'s' * (len(tests) != 1)})",
            command=GENERATE, arguments=[arg])))
        last = last_runs.get((uri, fn.qualname))
        if last is not None and last.status in ("failed", "partial"):
            lenses.append(types.CodeLens(range=at, command=types.Command(
                title=f"✗ last run failed: {first_failure(last)}", command=SHOW_CANDIDATES,
                arguments=[arg])))
    return lenses


def range_json(doc, text: str, found: tuple[int, int] | None) -> dict | None:
    """A body's range as the commands' JSON replies carry it."""
    if found is None:
        return None
    start, end = position(doc, text, found[0]), position(doc, text, found[1])
    return {"start": {"line": start.line, "character": start.character},
            "end": {"line": end.line, "character": end.character}}


def workspace_edit(doc, uri: str, version, text: str, change: BodyEdit) -> types.WorkspaceEdit:
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=[types.TextEdit(range=to_range(doc, text, change.start, change.end),
                              new_text=change.new_text)])])
