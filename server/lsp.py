"""``budgetpass serve``: the language server. Registers LSP features and delegates to the core.

Heavy work (sampling, test runs) runs in worker threads; the event loop only moves messages, so the
server answers cancellations, configuration and new keystrokes while a job runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from budgetpass.app import config as configs
from budgetpass.app.complete import Completions, complete
from budgetpass.app.config import SECTION
from budgetpass.app.report import Cancelled, Event, Report, SolveError, first_failure, summary
from budgetpass.app.solve import Request, solve
from budgetpass.app.target import function_at, tested_functions
from budgetpass.app.workers import WorkerCache
from budgetpass.app.write import body_edit, body_range
from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification
from pygls.uris import to_fs_path

from .work import ModelSlot, StopFlag, WorkBoard

log = logging.getLogger("budgetpass.server")

GENERATE = "budgetpass.generateUntilPass"
SHOW_CANDIDATES = "budgetpass.showCandidates"
# Server -> client notification {state: loading|ready|failed, model, seconds, message}: what a
# status bar shows, so clients need not parse log lines.
STATUS = "budgetpass/status"
CONFIG_TIMEOUT_S = 3.0  # a client that never answers workspace/configuration must not stall us
PROGRESS_EVERY_S = 0.25

_REQUEST_ID: contextvars.ContextVar = contextvars.ContextVar("budgetpass_request_id", default=None)


class UserError(Exception):
    """A request that cannot be served as asked; the message says why and what to do."""


class Protocol(LanguageServerProtocol):
    """Knows which request a handler serves, so ``$/cancelRequest`` reaches running work.

    pygls cancels a request's future but cannot stop a thread; the handler registers a StopFlag
    under its request id (read from a context variable the handler's task inherits).
    """

    def _handle_request(self, msg_id, method_name, params):
        token = _REQUEST_ID.set(msg_id)
        try:
            super()._handle_request(msg_id, method_name, params)
        finally:
            _REQUEST_ID.reset(token)

    def structure_message(self, data):
        """pygls drops a request whose params do not fit the method's type, and the client would
        wait forever: answer it with an error instead."""
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, JsonRpcInternalError) as exc:
            if not (isinstance(data, dict) and "id" in data and "method" in data):
                raise
            why = f"budgetpass: malformed params for {data['method']}: {exc.__cause__ or exc}"
            log.warning("%s", why)
            self._send_response(data["id"], error=JsonRpcInvalidParams(why[:500])
                                .to_response_error())
            return JsonRPCNotification(jsonrpc="2.0", method="$/budgetpass/ignored", params=None)

    def _handle_cancel_notification(self, msg_id):
        flag = self._server.cancel_flags.pop(msg_id, None)
        if flag is not None:
            flag.stop("cancelled by the client ($/cancelRequest)")
        super()._handle_cancel_notification(msg_id)


class BudgetpassServer(LanguageServer):
    def __init__(self):
        super().__init__("budgetpass", "0.1.0", protocol_cls=Protocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.config, problems = configs.from_lsp(None)  # BUDGETPASS_SANDBOX may set tests.sandbox
        for problem in problems:
            log.warning("%s", problem)
        self.workers = WorkerCache()  # warm test workers kept between requests
        self.board = WorkBoard()
        self.model = ModelSlot()
        self.cancel_flags: dict[Any, StopFlag] = {}
        self.last_runs: dict[tuple[str, str], Report] = {}
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="budgetpass-work")
        self.told_not_ready = False
        self.shown_model_error = ""  # a failing server is retried; its error is shown once
        self.apply_settings_pending: Any = None  # initializationOptions, applied on initialized

    # --- messages to the user -----------------------------------------------------------------

    def _from_any_thread(self, fn, *args) -> None:
        loop = getattr(self, "event_loop", None)
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(fn, *args)
        else:
            fn(*args)

    def show(self, message: str, kind=types.MessageType.Info) -> None:
        log.info("showMessage: %s", message)
        self._from_any_thread(self.window_show_message,
                              types.ShowMessageParams(type=kind, message=message))

    def tell_log(self, message: str, kind=types.MessageType.Log) -> None:
        log.info("%s", message)
        self._from_any_thread(self.window_log_message,
                              types.LogMessageParams(type=kind, message=message))

    def report_server_error(self, error, source):
        # pygls would pop a message box per failed request; we log it (the reply carries the error).
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)

    # --- settings -----------------------------------------------------------------------------

    def apply_settings(self, data: Any, origin: str) -> None:
        new, problems = configs.from_lsp(data, self.config)
        for problem in problems:
            self.show(f"budgetpass settings ({origin}): {problem}", types.MessageType.Warning)
        changed = new != self.config
        self.config = new
        if changed:
            self.tell_log(f"settings from {origin}: {new.to_json()}")
            for note in configs.notes(new):
                self.show(note, types.MessageType.Warning)
        self.load_model()

    def tell_status(self, state: str, model: str, message: str, seconds: float = 0.0) -> None:
        self._from_any_thread(self.protocol.notify, STATUS,
                              {"state": state, "model": model, "seconds": round(seconds, 3),
                               "message": message})

    def load_model(self) -> None:
        self.model.ensure(self.config.model.spec, self._model_loaded,
                          lambda slot: self.tell_status("loading", slot.name,
                                                        f"loading {slot.name}"))

    def _model_loaded(self, slot: ModelSlot) -> None:
        if slot.state == "ready":
            self.shown_model_error = ""
            opened = slot.model
            template = opened.template(self.config.model.template or None)
            message = (f"model {slot.name} ready ({opened.choice.name}: {opened.choice.reason}; "
                       f"template {template.template.name}: {template.reason}; "
                       f"{slot.seconds:.1f} s)")
            self.tell_log(message, types.MessageType.Info)
            if template.fallback:
                self.show(f"budgetpass: {template.reason}", types.MessageType.Warning)
        else:
            if slot.spec.backend == "openai":
                how = (f"Start the server or set {SECTION}.endpoint to its URL; it is tried again "
                       "on the next request.")
            else:
                how = (f"Run `budgetpass models fetch {slot.name}` or set {SECTION}.model to a "
                       "fetched model or a .gguf path.")
            message = f"budgetpass: {slot.error}. {how}"
            if slot.error != self.shown_model_error:  # a server that stays down: said once
                self.shown_model_error = slot.error
                self.show(message, types.MessageType.Error)
        self.tell_status(slot.state, slot.name, message, slot.seconds)

    async def pull_configuration(self) -> None:
        caps = self.client_capabilities.workspace
        if not (caps and caps.configuration):
            return
        try:
            answer = await asyncio.wait_for(self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])),
                CONFIG_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.tell_log(f"the client did not answer workspace/configuration within "
                          f"{CONFIG_TIMEOUT_S:g} s; keeping the current settings",
                          types.MessageType.Warning)
            return
        except Exception as exc:  # noqa: BLE001 - a client error here must not stop the server
            self.tell_log(f"workspace/configuration failed: {exc}", types.MessageType.Warning)
            return
        if answer and answer[0] is not None:
            self.apply_settings(answer[0], "workspace/configuration")

    # --- documents ----------------------------------------------------------------------------

    def document(self, uri: str):
        if not isinstance(uri, str) or not uri:
            raise UserError("missing document uri")
        if uri not in self.workspace.text_documents:
            raise UserError(f"{uri} is not open in the editor (send textDocument/didOpen first)")
        return self.workspace.get_text_document(uri)

    def is_open(self, uri: str) -> bool:
        return uri in self.workspace.text_documents

    def offset(self, doc, position: types.Position) -> int:
        lines = doc.lines
        if position.line >= len(lines):
            return len(doc.source)
        return doc.offset_at_position(position)

    def position(self, doc, text: str, offset: int) -> types.Position:
        line = text.count("\n", 0, offset)
        start = text.rfind("\n", 0, offset) + 1
        return doc.position_codec.position_to_client_units(
            text.splitlines(keepends=True) or [""],
            types.Position(line=line, character=offset - start))


server = BudgetpassServer()


def is_python(doc) -> bool:
    return doc.language_id == "python" or doc.uri.endswith((".py", ".pyi"))


def file_path(uri: str) -> Path | None:
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return Path(path) if path else None


def guarded(fn):
    """Every handler: a failure becomes a readable LSP error, logged, never a dead server."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        except asyncio.CancelledError:
            raise
        except UserError as exc:
            server.tell_log(f"{fn.__name__}: {exc}", types.MessageType.Warning)
            raise JsonRpcInvalidParams(f"budgetpass: {exc}") from None
        except Exception as exc:
            log.exception("%s failed", fn.__name__)
            server.tell_log(f"{fn.__name__} failed: {type(exc).__name__}: {exc}",
                            types.MessageType.Error)
            raise JsonRpcInternalError(f"budgetpass: {fn.__name__} failed: {exc}") from None

    return wrapper


# --- lifecycle --------------------------------------------------------------------------------


@server.feature(types.INITIALIZE)
def initialize(ls: BudgetpassServer, params: types.InitializeParams) -> None:
    options = params.initialization_options
    if isinstance(options, dict) and SECTION in options and isinstance(options[SECTION], dict):
        options = options[SECTION]  # both {"budgetpass": {...}} and the bare section work
    ls.apply_settings_pending = options
    # Capabilities are computed after this handler: advertise the completion fallback only if on.
    wanted, _ = configs.from_lsp(options)
    if wanted.completion.enable and types.TEXT_DOCUMENT_COMPLETION not in ls.protocol.fm.features:
        ls.feature(types.TEXT_DOCUMENT_COMPLETION)(completion)


@server.feature(types.INITIALIZED)
async def initialized(ls: BudgetpassServer, params: types.InitializedParams) -> None:
    ls.event_loop = asyncio.get_running_loop()
    ls.apply_settings(ls.apply_settings_pending, "initializationOptions")
    await ls.pull_configuration()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: BudgetpassServer,
                                   params: types.DidChangeConfigurationParams) -> None:
    pushed = params.settings
    if isinstance(pushed, dict) and isinstance(pushed.get(SECTION), dict):
        ls.apply_settings(pushed[SECTION], "didChangeConfiguration")
    else:
        await ls.pull_configuration()


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: BudgetpassServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.board.close(params.text_document.uri)


@server.feature(types.SHUTDOWN)
def shutdown(ls: BudgetpassServer, params) -> None:
    ls.board.stop_all("server shutting down")
    ls.workers.close()


# --- inline completion ------------------------------------------------------------------------


async def complete_at(ls: BudgetpassServer, uri: str, position: types.Position
                      ) -> tuple[Any, Completions] | None:
    """(document, proposals) for the cursor, or None (disabled, not Python, superseded, not
    ready, cancelled)."""
    if not ls.is_open(uri):
        return None  # closed while the request was on its way
    doc = ls.document(uri)
    config = ls.config
    path = file_path(uri)
    if not config.inline.enable or not is_python(doc) or path is None:
        return None
    serial, flag = ls.board.start_inline(uri)
    request_id = _REQUEST_ID.get()
    if request_id is not None:
        ls.cancel_flags[request_id] = flag
    try:
        await asyncio.sleep(config.inline.debounce_ms / 1000)
        if flag() or not ls.board.is_latest_inline(uri, serial):
            return None  # a newer keystroke arrived during the debounce
        opened = ls.model.ready_model()
        if opened is None:
            if ls.model.state == "failed":
                ls.load_model()  # e.g. the server is up now (retried at most every few seconds)
            if not ls.told_not_ready:
                ls.told_not_ready = True
                state = ls.model.error or f"model {config.model.name} is still loading"
                ls.show(f"budgetpass: {state}; completions start when it is ready")
            return None
        if getattr(opened.backend, "busy", False) and ls.board.jobs_running():
            return None  # a job holds the model for seconds: ghost text would come far too late
        call = functools.partial(complete, path, doc.source, ls.offset(doc, position), config,
                                 should_stop=flag, workers=ls.workers)
        try:
            result = await asyncio.get_running_loop().run_in_executor(ls.pool, call)
        except Cancelled:
            return None
        except asyncio.CancelledError:
            flag.stop("cancelled by the client")
            raise
        except SolveError as exc:
            raise UserError(str(exc)) from None
        report = result.report
        ls.tell_log(f"inline {Path(uri).name}:{position.line + 1}: "
                    f"{'body' if result.multiline else 'line'}, k={result.samples}, "
                    f"{len(result.items)} item(s), {report.seconds * 1000:.0f} ms"
                    + (f", tests {len(report.tests)}, verified "
                       f"{sum(c.verified for c in result.items)}" if report.tests else "")
                    + ("; " + "; ".join(result.notes) if result.notes else ""))
        return doc, result
    finally:
        if request_id is not None:
            ls.cancel_flags.pop(request_id, None)


def _range(ls: BudgetpassServer, doc, start: int, end: int) -> types.Range:
    text = doc.source
    return types.Range(start=ls.position(doc, text, start), end=ls.position(doc, text, end))


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
@guarded
async def inline_completion(ls: BudgetpassServer, params: types.InlineCompletionParams):
    found = await complete_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    doc, result = found
    uri = params.text_document.uri
    return types.InlineCompletionList(items=[
        types.InlineCompletionItem(
            insert_text=c.text, range=_range(ls, doc, c.start, c.end),
            # The test outcome where editors show it (the item command's title); the client
            # runs the command when the item is accepted.
            command=types.Command(title=c.label, command="budgetpass.inlineStatus", arguments=[{
                "uri": uri, "version": doc.version, "index": i, "status": c.status,
                "passed": c.passed or 0, "total": c.tests}]))
        for i, c in enumerate(result.items)])


@guarded
async def completion(ls: BudgetpassServer, params: types.CompletionParams):
    """Fallback for clients without inline completion; registered only when enabled."""
    if not ls.config.completion.enable:
        return None
    found = await complete_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    doc, result = found
    items = []
    for rank, cand in enumerate(result.items):
        first = cand.text.strip().splitlines()[0] if cand.text.strip() else cand.text
        items.append(types.CompletionItem(
            label=first[:60], kind=types.CompletionItemKind.Snippet,
            detail="budgetpass" + (" (tests pass)" if cand.verified else ""),
            sort_text=f"{rank:03d}", filter_text=first,
            text_edit=types.TextEdit(range=_range(ls, doc, cand.start, cand.end),
                                     new_text=cand.text)))
    return types.CompletionList(is_incomplete=True, items=items)


# --- generate until the tests pass --------------------------------------------------------------


def _target(ls: BudgetpassServer, args: tuple) -> tuple[Any, str, types.Position]:
    """(document, uri, position) from ``[{uri, position}]`` or ``[uri, position]``."""
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
    return ls.document(uri), uri, types.Position(line=pos["line"], character=pos["character"])


def _function_at(ls: BudgetpassServer, doc, position: types.Position):
    if not is_python(doc):
        raise UserError(f"{doc.uri} is not a Python document")
    fn = function_at(doc.source, ls.offset(doc, position))
    if fn is None:
        raise UserError(f"no function at line {position.line + 1}; put the cursor in a function")
    return fn


class _Progress:
    """window/workDoneProgress for one job, throttled; cancel from the client raises the flag."""

    def __init__(self, ls: BudgetpassServer, flag: StopFlag, title: str):
        self.ls, self.flag, self.title = ls, flag, title
        self.token = f"budgetpass-{uuid.uuid4().hex[:12]}"
        self.enabled = False
        self.start = time.monotonic()
        self.last = 0.0
        self.k = 0
        self.tested = 0
        self.passing = 0
        self.percentage = 0

    async def begin(self) -> None:
        caps = self.ls.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return
        try:
            await asyncio.wait_for(self.ls.work_done_progress.create_async(self.token), 5)
        except Exception as exc:  # noqa: BLE001 - progress is a nicety, the job goes on
            log.warning("progress create failed: %s", exc)
            return
        self.enabled = True
        future = self.ls.work_done_progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(lambda f: self.flag.stop("cancelled from the progress UI"))
        self.ls.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
            title=self.title, cancellable=True, message="starting", percentage=0))

    def event(self, event: Event) -> None:
        """Called from the job's thread. Generate and test events interleave (candidates are
        tested while others decode); the counts come from the events, never from their text."""
        if event.phase == "generate":
            self.k = max(self.k, event.samples)
        if event.phase == "test":
            self.tested = event.done
            self.passing = max(self.passing, event.passing)
        now = time.monotonic()
        if not self.enabled or (now - self.last < PROGRESS_EVERY_S and event.phase != "test"):
            return
        self.last = now
        elapsed = now - self.start
        if event.phase == "generate":
            message = (f"sampling {self.k} candidates · {event.done} tokens"
                       + (f" · {self.tested} tested · {self.passing} passing" if self.tested
                          else "") + f" · {elapsed:.1f} s")
            percentage = int(40 * event.done / max(1, event.total))
        elif event.phase == "test":
            message = (f"candidate {event.done}/{event.total} · {self.passing} passing · "
                       f"{elapsed:.1f} s")
            percentage = 40 + int(60 * event.done / max(1, event.total))
        else:
            message, percentage = f"{event.phase}: {event.text} · {elapsed:.1f} s", 0
        # Tests interleave with sampling, and anytime adds batches: never let the bar go back.
        self.percentage = max(self.percentage, min(99, percentage))
        self.ls._from_any_thread(self.ls.work_done_progress.report, self.token,
                                 types.WorkDoneProgressReport(message=message,
                                                              percentage=self.percentage))

    def end(self, message: str) -> None:
        if self.enabled:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)


async def run_job(ls: BudgetpassServer, args: tuple, apply: bool) -> dict:
    doc, uri, position = _target(ls, args)
    fn = _function_at(ls, doc, position)
    path = file_path(uri)
    if path is None:
        raise UserError(f"{uri} is not a file on disk; save it inside a project first")
    flag = ls.board.start_job(uri)
    if flag is None:
        raise UserError(f"a job is already running for {Path(path).name}; wait or cancel it")
    request_id = _REQUEST_ID.get()
    if request_id is not None:
        ls.cancel_flags[request_id] = flag
    version, text = doc.version, doc.source
    progress = _Progress(ls, flag, f"budgetpass: {fn.qualname}")
    try:
        await progress.begin()
        call = functools.partial(solve, Request(path, fn.qualname, text=text), ls.config,
                                 on_event=progress.event, should_stop=flag, workers=ls.workers)
        try:
            report = await asyncio.get_running_loop().run_in_executor(ls.pool, call)
        except SolveError as exc:
            cancelled = flag() and isinstance(exc, Cancelled)
            progress.end("cancelled" if cancelled else f"error: {exc}")
            if cancelled:
                ls.show(f"budgetpass: {fn.qualname}: cancelled ({flag.reason}); nothing applied")
                return {"status": "cancelled", "applied": False, "reason": flag.reason}
            raise UserError(str(exc)) from None
        except asyncio.CancelledError:
            flag.stop("cancelled")
            raise
        ls.last_runs[(uri, fn.qualname)] = report
        applied, note = False, ""
        if apply and report.selected_body is not None and report.status == "partial":
            note = (f"nothing applied: the best candidate passes only some tests; see "
                    f"{SHOW_CANDIDATES}")
        elif apply and report.selected_body is not None:
            applied, note = await _apply(ls, uri, report, version, text)
        said = summary(report, applied, note, apply)
        progress.end(said)
        ls.show(said, types.MessageType.Info if report.status != "failed"
                else types.MessageType.Warning)
        caps = ls.client_capabilities.workspace
        if caps and caps.code_lens and caps.code_lens.refresh_support:
            ls.workspace_code_lens_refresh(None)
        data = report.to_json()
        data.update(applied=applied, note=note, version=version,
                    range=_body_range(ls, doc, text, fn.qualname))
        return data
    finally:
        ls.board.finish_job(uri, flag)
        if request_id is not None:
            ls.cancel_flags.pop(request_id, None)


def _body_range(ls, doc, text: str, qualname: str) -> dict | None:
    found = body_range(text, qualname)
    if found is None:
        return None
    start, end = ls.position(doc, text, found[0]), ls.position(doc, text, found[1])
    return {"start": {"line": start.line, "character": start.character},
            "end": {"line": end.line, "character": end.character}}


async def _apply(ls: BudgetpassServer, uri: str, report: Report, version, text: str):
    doc = ls.workspace.get_text_document(uri)
    if doc.version != version or doc.source != text:
        return False, (f"the document changed while the job ran (version {version} -> "
                       f"{doc.version}); nothing applied; the body is in {SHOW_CANDIDATES}")
    change = body_edit(text, report.function, report.selected_body)
    start, end = ls.position(doc, text, change.start), ls.position(doc, text, change.end)
    body = change.new_text
    edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=[types.TextEdit(range=types.Range(start=start, end=end), new_text=body)])])
    try:
        answer = await asyncio.wait_for(ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label=f"budgetpass: {report.function}")), 30)
    except Exception as exc:  # noqa: BLE001
        return False, f"the client did not apply the edit: {exc}"
    if not answer.applied:
        return False, f"the client refused the edit: {answer.failure_reason or 'no reason given'}"
    return True, ""


@server.command(GENERATE)
@guarded
async def generate_until_pass(ls: BudgetpassServer, *args):
    return await run_job(ls, args, apply=True)


@server.command(SHOW_CANDIDATES)
@guarded
async def show_candidates(ls: BudgetpassServer, *args):
    """The last run's candidates for the function at the position (runs one if there is none)."""
    doc, uri, position = _target(ls, args)
    fn = _function_at(ls, doc, position)
    report = ls.last_runs.get((uri, fn.qualname))
    if report is None:
        return await run_job(ls, args, apply=False)
    data = report.to_json()
    data.update(applied=False, version=doc.version,
                range=_body_range(ls, doc, doc.source, fn.qualname))
    return data


# --- code lenses --------------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
@guarded
async def code_lens(ls: BudgetpassServer, params: types.CodeLensParams):
    uri = params.text_document.uri
    if not ls.is_open(uri):
        return []
    doc = ls.document(uri)
    path = file_path(uri)
    if not is_python(doc) or path is None:
        return []
    text = doc.source
    found = await asyncio.get_running_loop().run_in_executor(
        ls.pool, functools.partial(tested_functions, text, path))
    lenses = []
    for fn, tests in found:
        at = types.Range(start=types.Position(line=fn.def_line, character=0),
                         end=types.Position(line=fn.def_line, character=0))
        arg = {"uri": uri, "position": {"line": fn.def_line, "character": fn.def_column}}
        lenses.append(types.CodeLens(range=at, command=types.Command(
            title=f"▶ Generate until tests pass ({len(tests)} test{'s' * (len(tests) != 1)})",
            command=GENERATE, arguments=[arg])))
        last = ls.last_runs.get((uri, fn.qualname))
        if last is not None and last.status in ("failed", "partial"):
            lenses.append(types.CodeLens(range=at, command=types.Command(
                title=f"✗ last run failed: {first_failure(last)}", command=SHOW_CANDIDATES,
                arguments=[arg])))
    return lenses


# --- entry point --------------------------------------------------------------------------------


def log_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "state")
    return Path(base) / "budgetpass" / "server.log"


def serve(tcp: str | None = None) -> int:
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler()  # stderr: never stdout, which carries the protocol
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    log.info("budgetpass serve starting (pid %d, log %s)", os.getpid(), path)
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
    return 0
