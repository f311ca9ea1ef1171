"""A hypothesis-driven fuzz of `budgetpass serve` (SmolLM2-135M, real): random sequences of
open / change (incremental and full) / close / inline completion / completion / executeCommand /
code lens / cancel, valid and malformed, unknown URIs, positions past the end. The server never
dies, answers (or cancels) every request within a deadline, and after every change its text of
the document equals the editor's (through ``budgetpass/debugDocument``, served only when
BUDGETPASS_TEST_REQUESTS=1). Derandomized: CI replays the same examples."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.server.lsp_session import Editor, start_editor
from tests.server.test_generate_cli import double_project

pytestmark = pytest.mark.slow

DEADLINE_S = 90  # every request answered or cancelled within this (a job runs a real model)
EXAMPLES = 30
SETTINGS = {"model": "smollm2-135m", "completion": {"enable": True},
            "inline": {"debounceMs": 0, "maxTokens": 6},
            "budget": {"metric": "samples", "samples": 1}, "sampling": {"maxTokens": 12},
            "tests": {"timeoutSeconds": 10}}
TESTS = "from mod import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
DOCS = ("mod.py", "other.py", "notes.txt", "untitled")  # mod.py has tests on disk
COMMANDS = ("budgetpass.generateUntilPass", "budgetpass.showCandidates", "budgetpass.nope")

# Text with multi-unit characters (é: 1 UTF-16 unit, 𝄞: 2) and Python-ish pieces.
texts = st.lists(st.sampled_from(["a", "x", " ", "    ", "\n", "=", "(", ")", ":", "é", "𝄞",
                                  "def f(x):", "return x", '"""', "#"]),
                 max_size=12).map("".join)
where = st.integers(0, 10_000)  # a fraction of the text, or a position far past the end
positions = st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 12)),  # in the function
                      st.tuples(st.integers(0, 40), st.integers(0, 200)))  # often past the end
malformed = st.sampled_from([
    ("textDocument/inlineCompletion", {"textDocument": 5, "position": "x"}),
    ("textDocument/inlineCompletion", {"textDocument": {"uri": "file:///nowhere/ghost.py"},
                                       "position": {"line": 3, "character": 1},
                                       "context": {"triggerKind": 1}}),
    ("textDocument/completion", {"textDocument": {"uri": None}, "position": {"line": -1}}),
    ("textDocument/codeLens", {"textDocument": {}}),
    ("workspace/executeCommand", {"command": 7}),
    ("workspace/executeCommand", {"command": "budgetpass.showCandidates",
                                  "arguments": [{"uri": 3, "position": {"line": "a"}}]}),
    ("budgetpass/noSuchMethod", {}),
    ("textDocument/inlineCompletion", None),
])

ops = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(DOCS), texts),
    st.tuples(st.just("full"), st.sampled_from(DOCS), texts),
    *[st.tuples(st.just("edit"), st.sampled_from(DOCS), where, where, texts)] * 3,
    st.tuples(st.just("close"), st.sampled_from(DOCS)),
    st.tuples(st.just("inline"), st.sampled_from(DOCS + ("ghost",)), positions, st.booleans()),
    st.tuples(st.just("completion"), st.sampled_from(DOCS + ("ghost",)), positions,
              st.booleans()),
    st.tuples(st.just("command"), st.sampled_from(COMMANDS), st.sampled_from(DOCS + ("ghost",)),
              positions, st.sampled_from(["object", "pair", "none", "junk"]), st.booleans()),
    st.tuples(st.just("lens"), st.sampled_from(DOCS + ("ghost",))),
    st.tuples(st.just("raw"), malformed),
)


class Fuzzer:
    """One server for all examples; each example works on fresh URIs (but mod.py's own)."""

    def __init__(self, editor: Editor, project):
        self.editor, self.project = editor, project
        self.ids = itertools.count()
        self.example = 0
        self.answers: Counter = Counter()  # (method, "result" | "error") -> count
        self.checked = 0  # document states compared
        self.errors: set[str] = set()  # what the error replies said (printed)

    def uri(self, doc: str) -> str:
        if doc == "mod.py":
            return (self.project / "mod.py").as_uri()
        if doc == "untitled":
            return f"untitled:Untitled-{self.example}"
        if doc == "ghost":
            return "file:///nowhere/ghost.py"
        return (self.project / f"e{self.example}_{doc}").as_uri()

    def language(self, doc: str) -> str:
        return "plaintext" if doc.endswith(".txt") else "python"

    async def request(self, method: str, params, cancel: bool = False):
        msg_id = f"fuzz-{next(self.ids)}"
        future = asyncio.ensure_future(self.editor.raw_request(method, params, msg_id))
        if cancel:
            await asyncio.sleep(0.05)
            self.editor.client.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
        try:
            answer = await asyncio.wait_for(future, DEADLINE_S)
            self.answers[method, "result"] += 1
            return answer
        except JsonRpcException as exc:  # an error reply is an answer
            self.answers[method, "error"] += 1
            self.errors.add(f"{method}: {str(exc)[:120]}")
            return exc
        except asyncio.TimeoutError:
            raise AssertionError(f"{method} {params!r}: no answer within {DEADLINE_S} s") from None

    async def check_document(self, doc: str) -> None:
        uri = self.uri(doc)
        seen = await self.request("budgetpass/debugDocument", {"uri": uri})
        if uri in self.editor.texts:
            assert seen is not None, f"{uri} is open in the editor, not in the server"
            fields = seen if isinstance(seen, dict) else seen._asdict()
            assert fields["text"] == self.editor.texts[uri], (fields, self.editor.texts[uri])
            assert fields["version"] == self.editor.versions[uri]
        else:
            assert seen is None, f"{uri} is closed in the editor but the server holds {seen!r}"
        self.checked += 1

    def argument(self, uri: str, position, shape: str):
        pos = {"line": position[0], "character": position[1]}
        return {"object": [{"uri": uri, "position": pos}], "pair": [uri, pos], "none": [],
                "junk": [{"uri": uri, "position": [1, 2]}, 5]}[shape]

    async def play(self, steps) -> None:
        editor, pending = self.editor, []
        editor.open(self.project / "mod.py")  # every example starts with the tested file open
        await self.check_document("mod.py")
        for step in steps:
            kind, rest = step[0], step[1:]
            if kind in ("open", "full", "edit", "close"):
                doc = rest[0]
                uri = self.uri(doc)
                if kind == "open":
                    if uri in editor.texts:
                        continue  # a second didOpen is a client bug the protocol does not define
                    editor.texts[uri], editor.versions[uri] = rest[1], 1
                    editor.client.text_document_did_open(types.DidOpenTextDocumentParams(
                        text_document=types.TextDocumentItem(
                            uri=uri, language_id=self.language(doc), version=1, text=rest[1])))
                elif uri not in editor.texts:
                    continue  # changes to a closed document: the client's bug, not ours
                elif kind == "full":
                    editor.change(uri, rest[1])
                elif kind == "edit":
                    size = len(editor.texts[uri])
                    a, b = sorted((rest[1] % (size + 1), rest[2] % (size + 1)))
                    editor.edit(uri, a, b, rest[3])
                else:
                    editor.close(uri)
                    del editor.texts[uri], editor.versions[uri]
                await self.check_document(doc)
            elif kind in ("inline", "completion"):
                doc, (line, char), cancel = rest
                where_ = {"textDocument": {"uri": self.uri(doc)},
                          "position": {"line": line, "character": char}}
                if kind == "inline":
                    where_["context"] = {"triggerKind": 2}
                    method = "textDocument/inlineCompletion"
                else:
                    method = "textDocument/completion"
                pending.append(self.request(method, where_, cancel))
            elif kind == "command":
                name, doc, position, shape, cancel = rest
                pending.append(self.request("workspace/executeCommand", {
                    "command": name, "arguments": self.argument(self.uri(doc), position, shape)},
                    cancel))
            elif kind == "lens":
                pending.append(self.request("textDocument/codeLens",
                                            {"textDocument": {"uri": self.uri(rest[0])}}))
            else:
                pending.append(self.request(*rest[0]))
            pending = [asyncio.ensure_future(p) if asyncio.iscoroutine(p) else p for p in pending]
        await asyncio.gather(*pending)  # each has its own deadline; an AssertionError fails
        for uri in list(editor.texts):
            editor.close(uri)
            del editor.texts[uri], editor.versions[uri]
        # Still serving: a fresh mod.py gets its code lens.
        uri = self.uri("mod.py")
        editor.open(self.project / "mod.py")
        lenses = await self.request("textDocument/codeLens", {"textDocument": {"uri": uri}})
        assert isinstance(lenses, list) and lenses, lenses  # (a failed run adds a second)
        editor.close(uri)
        del editor.texts[uri], editor.versions[uri]
        assert editor.client._server.returncode is None, "the server died"


def test_random_protocol_sequences_never_crash_hang_or_desync(tmp_path, smol_path):
    project = double_project(tmp_path / "p", TESTS)
    loop = asyncio.new_event_loop()
    editor = loop.run_until_complete(start_editor(tmp_path / "state", SETTINGS,
                                                  env={"BUDGETPASS_TEST_REQUESTS": "1"}))
    fuzzer = Fuzzer(editor, project)
    loop.run_until_complete(editor.wait_status("ready", timeout=120))

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: a real server is slow
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(steps=st.lists(ops, min_size=3, max_size=14))
    @example(steps=[  # a job that runs while the editor types, then a cancelled one
        ("command", "budgetpass.generateUntilPass", "mod.py", (0, 4), "object", False),
        ("edit", "mod.py", 64, 64, "# 𝄞é\n"), ("inline", "mod.py", (2, 4), False),
        ("command", "budgetpass.showCandidates", "mod.py", (0, 4), "pair", True),
        ("edit", "mod.py", 0, 10_000, "")])
    def play(steps):
        fuzzer.example += 1
        loop.run_until_complete(fuzzer.play(steps))

    try:
        play()
        print(f"fuzz: {EXAMPLES} examples, {fuzzer.checked} document states compared, answers:",
              dict(sorted(fuzzer.answers.items())), "errors:", *sorted(fuzzer.errors), sep="\n")
        # The fuzz reached the model and the commands, not only the fast error paths.
        assert fuzzer.checked >= EXAMPLES
        for method in ("textDocument/inlineCompletion", "workspace/executeCommand"):
            assert fuzzer.answers[method, "result"] and fuzzer.answers[method, "error"], method
        assert not [e for e in fuzzer.errors if " failed: " in e], "internal errors, not answers"
    finally:
        loop.run_until_complete(editor.client.shutdown_session())
        loop.close()
