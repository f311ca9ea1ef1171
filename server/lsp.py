"""``budgetpass serve``: the language server. Registers LSP features and delegates to the core.

Heavy work (sampling, test runs) runs in worker threads; the event loop only moves messages, so the
server answers cancellations, configuration and new keystrokes while a job runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from budgetpass.app import config as configs
from budgetpass.app.complete import RecentCompletions
from budgetpass.app.config import SECTION
from budgetpass.app.config_sources import from_lsp
from budgetpass.app.report import Report
from budgetpass.app.target import tested_functions
from budgetpass.app.workers import WorkerCache
from budgetpass.generation.backends import close_models
from budgetpass.verify import index as indexes
from budgetpass.verify.runner import find_project_root
from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from . import convert, requests
from .convert import GENERATE, SHOW_CANDIDATES, UserError
from .protocol import Protocol
from .work import ModelSlot, StopFlag, WorkBoard

log = logging.getLogger("budgetpass.server")

# Server -> client notification {state: loading|ready|failed, model, seconds, message}: what a
# status bar shows, so clients need not parse log lines.
STATUS = "budgetpass/status"
CONFIG_TIMEOUT_S = 3.0  # a client that never answers workspace/configuration must not stall us


class BudgetpassServer(LanguageServer):
    def __init__(self):
        super().__init__("budgetpass", "0.1.0", protocol_cls=Protocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.config, problems = from_lsp(None)  # BUDGETPASS_SANDBOX may set tests.sandbox
        for problem in problems:
            log.warning("%s", problem)
        self.workers = WorkerCache()  # warm test workers kept between requests
        self.recent = RecentCompletions()  # inline proposals the user may type through
        self.board = WorkBoard()
        self.model = ModelSlot()
        self.last_runs: dict[tuple[str, str], Report] = {}
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="budgetpass-work")
        self.told_not_ready = False
        self.shown_model_error = ""  # a failing server is retried; its error is shown once
        self.apply_settings_pending: Any = None  # initializationOptions, applied on initialized

    # --- messages to the user -----------------------------------------------------------------

    def from_any_thread(self, fn, *args) -> None:
        loop = getattr(self, "event_loop", None)
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(fn, *args)
        else:
            fn(*args)

    def show(self, message: str, kind=types.MessageType.Info) -> None:
        log.info("showMessage: %s", message)
        self.from_any_thread(self.window_show_message,
                              types.ShowMessageParams(type=kind, message=message))

    def tell_log(self, message: str, kind=types.MessageType.Log) -> None:
        log.info("%s", message)
        self.from_any_thread(self.window_log_message,
                              types.LogMessageParams(type=kind, message=message))

    def report_server_error(self, error, source):
        # pygls would pop a message box per failed request; we log it (the reply carries the error).
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)

    # --- settings -----------------------------------------------------------------------------

    def apply_settings(self, data: Any, origin: str) -> None:
        new, problems = from_lsp(data, self.config)
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
        self.from_any_thread(self.protocol.notify, STATUS,
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

    def not_ready_yet(self) -> None:
        """Inline asked before the model is ready: retry a failed one, say so once."""
        if self.model.state == "failed":
            self.load_model()  # e.g. the server is up now (retried at most every few seconds)
        if not self.told_not_ready:
            self.told_not_ready = True
            state = self.model.error or f"model {self.config.model.name} is still loading"
            self.show(f"budgetpass: {state}; completions start when it is ready")

    async def in_pool(self, call, flag: StopFlag):
        """``call()`` in a worker thread; a cancelled request also raises the work's flag."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, call)
        except asyncio.CancelledError:
            flag.stop("cancelled by the client")
            raise

    def refresh_lenses(self) -> None:
        caps = self.client_capabilities.workspace
        if caps and caps.code_lens and caps.code_lens.refresh_support:
            self.workspace_code_lens_refresh(None)

    async def start_indexes(self) -> None:
        """Build each workspace folder's project index in the background and ask the client for
        Python file changes, which keep it current (without them, lookups check file times)."""
        folders = [to_fs_path(f.uri) for f in (self.workspace.folders or {}).values()] or \
            [self.workspace.root_path]
        folders = [f for f in folders if f]
        for folder in folders:
            indexes.project_index(find_project_root(Path(folder) / "_")).start()
        caps = self.client_capabilities.workspace
        if not folders or not (caps and caps.did_change_watched_files
                               and caps.did_change_watched_files.dynamic_registration):
            return
        try:
            await asyncio.wait_for(self.client_register_capability_async(types.RegistrationParams(
                registrations=[types.Registration(
                    id="budgetpass-python-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                    register_options=types.DidChangeWatchedFilesRegistrationOptions(
                        watchers=[types.FileSystemWatcher(glob_pattern="**/*.py")]))])),
                CONFIG_TIMEOUT_S)
            indexes.watch(folders)
        except Exception as exc:  # noqa: BLE001 - without events the index checks mtimes
            self.tell_log(f"cannot watch files ({exc}); test lookups check file times instead",
                          types.MessageType.Warning)


server = BudgetpassServer()


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
    wanted, _ = from_lsp(options)
    if wanted.completion.enable and types.TEXT_DOCUMENT_COMPLETION not in ls.protocol.fm.features:
        ls.feature(types.TEXT_DOCUMENT_COMPLETION)(completion)


@server.feature(types.INITIALIZED)
async def initialized(ls: BudgetpassServer, params: types.InitializedParams) -> None:
    ls.event_loop = asyncio.get_running_loop()
    ls.apply_settings(ls.apply_settings_pending, "initializationOptions")
    await ls.pull_configuration()
    await ls.start_indexes()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: BudgetpassServer,
                                   params: types.DidChangeConfigurationParams) -> None:
    pushed = params.settings
    if isinstance(pushed, dict) and isinstance(pushed.get(SECTION), dict):
        ls.apply_settings(pushed[SECTION], "didChangeConfiguration")
    else:
        await ls.pull_configuration()


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
async def did_change_watched_files(ls: BudgetpassServer,
                                   params: types.DidChangeWatchedFilesParams) -> None:
    paths = [p for p in (convert.file_path(c.uri) for c in params.changes) if p is not None]
    await asyncio.get_running_loop().run_in_executor(ls.pool, indexes.files_changed, paths)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: BudgetpassServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.board.close(params.text_document.uri)
    path = convert.file_path(params.text_document.uri)
    if path is not None:
        ls.recent.forget(path)


@server.feature(types.SHUTDOWN)
def shutdown(ls: BudgetpassServer, params) -> None:
    ls.board.stop_all("server shutting down")
    ls.workers.close()
    close_models()  # after the jobs just stopped have let go of it


# --- inline completion ------------------------------------------------------------------------


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
@guarded
async def inline_completion(ls: BudgetpassServer, params: types.InlineCompletionParams):
    found = await requests.complete_at(ls, params.text_document.uri, params.position)
    return convert.inline_list(*found) if found is not None else None


@guarded
async def completion(ls: BudgetpassServer, params: types.CompletionParams):
    """Fallback for clients without inline completion; registered only when enabled."""
    if not ls.config.completion.enable:
        return None
    found = await requests.complete_at(ls, params.text_document.uri, params.position)
    return convert.completion_list(*found) if found is not None else None


# --- generate until the tests pass --------------------------------------------------------------


@server.command(GENERATE)
@guarded
async def generate_until_pass(ls: BudgetpassServer, *args):
    return await requests.run_job(ls, args, apply=True)


@server.command(SHOW_CANDIDATES)
@guarded
async def show_candidates(ls: BudgetpassServer, *args):
    """The last run's candidates for the function at the position (runs one if there is none)."""
    uri, position = convert.command_target(args)
    doc = ls.document(uri)
    fn = requests.function_at_position(doc, position)
    report = ls.last_runs.get((uri, fn.qualname))
    if report is None:
        return await requests.run_job(ls, args, apply=False)
    return requests.reply(doc, report, doc.source, applied=False, version=doc.version)


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
@guarded
async def code_lens(ls: BudgetpassServer, params: types.CodeLensParams):
    uri = params.text_document.uri
    path = convert.file_path(uri)
    if not ls.is_open(uri) or path is None or not convert.is_python(ls.document(uri)):
        return []
    found = await asyncio.get_running_loop().run_in_executor(
        ls.pool, functools.partial(tested_functions, ls.document(uri).source, path))
    return convert.code_lenses(uri, found, ls.last_runs)


# --- test-only ----------------------------------------------------------------------------------

DEBUG_DOCUMENT = "budgetpass/debugDocument"

if os.environ.get("BUDGETPASS_TEST_REQUESTS") == "1":  # the protocol fuzz compares documents
    @server.feature(DEBUG_DOCUMENT)
    def debug_document(ls: BudgetpassServer, params) -> dict | None:
        """The server's text and version of ``{uri}``, or None when it is not open."""
        uri = getattr(params, "uri", None)
        if not isinstance(uri, str) or not ls.is_open(uri):
            return None
        doc = ls.workspace.get_text_document(uri)
        return {"text": doc.source, "version": doc.version}


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
