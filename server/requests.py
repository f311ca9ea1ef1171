"""What the server adds between a handler and the application layer: the newest keystroke wins,
a model that is not ready yet, one job per document, progress, cancellation, applying the edit
only to the version the job read."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from budgetpass.app.complete import Completions, complete
from budgetpass.app.report import Cancelled, Report, SolveError, summary
from budgetpass.app.solve import Request, solve
from budgetpass.app.target import function_at
from budgetpass.app.write import body_edit, body_range
from budgetpass.generation.locate import FunctionSite
from lsprotocol import types

from . import convert
from .convert import SHOW_CANDIDATES, UserError
from .progress import Progress


def function_at_position(doc, position: types.Position) -> FunctionSite:
    if not convert.is_python(doc):
        raise UserError(f"{doc.uri} is not a Python document")
    fn = function_at(doc.source, convert.offset(doc, position))
    if fn is None:
        raise UserError(f"no function at line {position.line + 1}; put the cursor in a function")
    return fn


async def complete_at(ls, uri: str, position: types.Position
                      ) -> tuple[Any, Completions] | None:
    """(document, proposals) for the cursor, or None (disabled, not Python, superseded, not
    ready, cancelled)."""
    if not ls.is_open(uri):
        return None  # closed while the request was on its way
    doc = ls.document(uri)
    config = ls.config
    path = convert.file_path(uri)
    if not config.inline.enable or not convert.is_python(doc) or path is None:
        return None
    serial, flag = ls.board.start_inline(uri)
    text, offset = doc.source, convert.offset(doc, position)
    reused = ls.recent.reuse(path, text, offset, config)
    if reused is not None:  # typed through shown proposals, or asked again (no debounce)
        _log_inline(ls, uri, position, reused)
        return doc, reused
    with ls.protocol.cancellations.track(ls.protocol, flag):
        await asyncio.sleep(config.inline.debounce_ms / 1000)
        if flag() or not ls.board.is_latest_inline(uri, serial):
            return None  # a newer keystroke arrived during the debounce
        opened = ls.model.ready_model()
        if opened is None:
            ls.not_ready_yet()
            return None
        if opened.backend.busy and ls.board.jobs_running():
            return None  # a job holds the model for seconds: ghost text would come far too late
        call = functools.partial(complete, path, text, offset, config, should_stop=flag,
                                 workers=ls.workers)
        try:
            result = await ls.in_pool(call, flag)
        except Cancelled:
            return None
        except SolveError as exc:
            raise UserError(str(exc)) from None
    ls.recent.remember(path, text, offset, config, result)
    _log_inline(ls, uri, position, result)
    return doc, result


def _log_inline(ls, uri: str, position: types.Position, result: Completions) -> None:
    report = result.report
    how = (f"reused ({len(result.typed_through)} character(s) typed through)"
           if result.typed_through is not None else f"{report.seconds * 1000:.0f} ms")
    ls.tell_log(f"inline {Path(uri).name}:{position.line + 1}: "
                f"{'body' if result.multiline else 'line'}, k={result.samples}, "
                f"{len(result.items)} item(s), {how}"
                + (f", tests {len(report.tests)}, verified "
                   f"{sum(c.verified for c in result.items)}" if report.tests else "")
                + ("; " + "; ".join(result.notes) if result.notes else ""))


async def run_job(ls, args: tuple, apply: bool) -> dict:
    """Generate until the tests pass for the function at the command's position; apply the body
    if asked and the document is still the one the job read."""
    uri, position = convert.command_target(args)
    doc = ls.document(uri)
    fn = function_at_position(doc, position)
    path = convert.file_path(uri)
    if path is None:
        raise UserError(f"{uri} is not a file on disk; save it inside a project first")
    flag = ls.board.start_job(uri)
    if flag is None:
        raise UserError(f"a job is already running for {Path(path).name}; wait or cancel it")
    version, text = doc.version, doc.source
    progress = Progress(ls, flag, f"budgetpass: {fn.qualname}")
    try:
        with ls.protocol.cancellations.track(ls.protocol, flag):
            await progress.begin()
            call = functools.partial(solve, Request(path, fn.qualname, text=text), ls.config,
                                     on_event=progress.event, should_stop=flag,
                                     workers=ls.workers)
            try:
                report = await ls.in_pool(call, flag)
            except SolveError as exc:
                cancelled = flag() and isinstance(exc, Cancelled)
                progress.end("cancelled" if cancelled else f"error: {exc}")
                if cancelled:
                    ls.show(f"budgetpass: {fn.qualname}: cancelled ({flag.reason}); nothing "
                            "applied")
                    return {"status": "cancelled", "applied": False, "reason": flag.reason}
                raise UserError(str(exc)) from None
        ls.last_runs[(uri, fn.qualname)] = report
        applied, note = False, ""
        if apply and report.selected_body is not None and report.status == "partial":
            note = (f"nothing applied: the best candidate passes only some tests; see "
                    f"{SHOW_CANDIDATES}")
        elif apply and report.selected_body is not None:
            applied, note = await apply_body(ls, uri, report, version, text)
        said = summary(report, applied, note, apply)
        progress.end(said)
        ls.show(said, types.MessageType.Info if report.status != "failed"
                else types.MessageType.Warning)
        ls.refresh_lenses()
        return reply(doc, report, text, applied=applied, note=note, version=version)
    finally:
        ls.board.finish_job(uri, flag)


def reply(doc, report: Report, text: str, **extra) -> dict:
    """A command's JSON answer: the report, what happened to it, and the body's range."""
    data = report.to_json()
    data.update(extra, range=convert.range_json(doc, text, body_range(text, report.function)))
    return data


async def apply_body(ls, uri: str, report: Report, version, text: str) -> tuple[bool, str]:
    doc = ls.workspace.get_text_document(uri)
    if doc.version != version or doc.source != text:
        return False, (f"the document changed while the job ran (version {version} -> "
                       f"{doc.version}); nothing applied; the body is in {SHOW_CANDIDATES}")
    change = body_edit(text, report.function, report.selected_body)
    edit = convert.workspace_edit(doc, uri, version, text, change)
    try:
        answer = await asyncio.wait_for(ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=f"budgetpass: {report.function}")), 30)
    except Exception as exc:  # noqa: BLE001
        return False, f"the client did not apply the edit: {exc}"
    if not answer.applied:
        return False, f"the client refused the edit: {answer.failure_reason or 'no reason given'}"
    return True, ""
