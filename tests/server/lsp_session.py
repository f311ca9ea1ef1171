"""A pytest-lsp client wired to a real `budgetpass serve` subprocess, with an editor's text model.

The client applies `workspace/applyEdit` to its own copy of each open document (as an editor does),
so a test can check what the user would end up with.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client


def offset_at(text: str, pos) -> int:
    """The index into ``text`` of an LSP position (lines end at \\n; characters in UTF-16 units,
    the default encoding); past the end of a line or the text clamps, as editors do."""
    lines = text.split("\n")
    if pos.line >= len(lines):
        return len(text)
    start = sum(len(line) + 1 for line in lines[:pos.line])
    units = 0
    for i, ch in enumerate(lines[pos.line]):
        if units >= pos.character:
            return start + i
        units += 2 if ord(ch) > 0xFFFF else 1
    return start + len(lines[pos.line])


def position_at(text: str, offset: int) -> types.Position:
    """The LSP position (UTF-16 characters) of an index into ``text``."""
    before = text[:offset]
    line_start = before.rfind("\n") + 1
    return types.Position(line=before.count("\n"), character=len(
        before[line_start:].encode("utf-16-le")) // 2)


def apply_text_edits(text: str, edits) -> str:
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                       reverse=True):
        text = (text[:offset_at(text, edit.range.start)] + edit.new_text
                + text[offset_at(text, edit.range.end):])
    return text


class Editor:
    """The client plus the texts and versions it holds."""

    def __init__(self, client: LanguageClient):
        self.client = client
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.applied_edits: list[types.ApplyWorkspaceEditParams] = []
        self.statuses: list[dict] = []  # budgetpass/status notifications, in order

        @client.feature("budgetpass/status")
        def status(params):
            fields = params if isinstance(params, dict) else params._asdict()  # pygls: a namedtuple
            self.statuses.append({k: fields.get(k) for k in ("state", "model", "seconds", "message")})

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams):
            self.applied_edits.append(params)
            for change in params.edit.document_changes or []:
                uri = change.text_document.uri
                if change.text_document.version != self.versions.get(uri):
                    return types.ApplyWorkspaceEditResult(applied=False,
                                                          failure_reason="version mismatch")
                self.texts[uri] = apply_text_edits(self.texts[uri], change.edits)
                self.change(uri, self.texts[uri], notify=True)
            return types.ApplyWorkspaceEditResult(applied=True)

    def open(self, path: Path, text: str | None = None, language: str = "python") -> str:
        uri = path.as_uri()
        self.texts[uri] = path.read_text() if text is None else text
        self.versions[uri] = 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                                 text=self.texts[uri])))
        return uri

    def change(self, uri: str, text: str, notify: bool = True) -> None:
        self.texts[uri] = text
        self.versions[uri] += 1
        if notify:
            self.client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri,
                                                                    version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def edit(self, uri: str, start: int, end: int, new_text: str) -> None:
        """An incremental change replacing ``text[start:end]``, as an editor sends a keystroke."""
        text = self.texts[uri]
        at = types.Range(start=position_at(text, start), end=position_at(text, end))
        self.texts[uri] = text[:start] + new_text + text[end:]
        self.versions[uri] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri,
                                                                version=self.versions[uri]),
            content_changes=[types.TextDocumentContentChangePartial(range=at, text=new_text)]))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))

    async def inline(self, uri: str, line: int, character: int):
        return await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic)))

    async def command(self, name: str, *arguments, msg_id: str | None = None):
        params = types.ExecuteCommandParams(command=name, arguments=list(arguments))
        return await self.client.protocol.send_request_async("workspace/executeCommand", params,
                                                             msg_id=msg_id)

    async def raw_request(self, method: str, params, msg_id: str):
        """A request written as raw JSON, so it can be malformed (the typed client refuses)."""
        import json
        from concurrent.futures import Future

        future: Future = Future()
        self.client.protocol._request_futures[msg_id] = future
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method,
                           "params": params}).encode()
        self.client._server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return await asyncio.wrap_future(future)

    async def wait_status(self, state: str, timeout: float = 60) -> dict:
        """Until the server's budgetpass/status says ``state`` (ready, failed)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for status in self.statuses:
                if status["state"] == state:
                    return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {state} status: {self.statuses!r}; log: "
                             + repr([m.message for m in self.client.log_messages][-5:]))

    async def wait_ready(self, timeout: float = 60) -> None:
        """Until the server says its model is loaded (and said it was loading first)."""
        ready = await self.wait_status("ready", timeout)
        assert self.statuses[0]["state"] == "loading", self.statuses
        assert ready["model"] == self.statuses[0]["model"] and ready["seconds"] > 0, ready


def server_env(state_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(state_dir), **extra}


async def start_editor(state_dir: Path, settings: dict | None = None, *,
                       configuration: dict | None = None,
                       answer_configuration: bool = True, env: dict | None = None,
                       root: Path | None = None) -> Editor:
    """``env``: variables the server gets on top of ours; ``root``: the workspace folder."""
    client = make_test_lsp_client()
    registrations: list[types.Registration] = []

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams):  # as VS Code does: accepted, remembered
        registrations.extend(params.registrations)
    if not answer_configuration:
        async def never_answer(params):
            await asyncio.sleep(3600)

        client.protocol.fm.features[types.WORKSPACE_CONFIGURATION] = never_answer
    elif configuration is not None:
        client.set_configuration(configuration, section="budgetpass")
    await client.start_io(sys.executable, "-m", "budgetpass.server.cli", "serve",
                          env=server_env(state_dir, **(env or {})))
    capabilities = client_capabilities("visual-studio-code")
    result = await client.initialize_session(types.InitializeParams(
        capabilities=capabilities, initialization_options={"budgetpass": settings or {}},
        root_uri=root.as_uri() if root else None,
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root
        else None))
    editor = Editor(client)
    editor.server_capabilities = result.capabilities
    editor.registrations = registrations
    return editor
