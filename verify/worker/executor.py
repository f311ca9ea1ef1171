"""The executor: a forked child under its own uid and limits that imports the candidate's module
and answers the judge's calls in safe JSON. Everything of the candidate runs here."""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import pickle
import socket
import sys
import types

from .child import apply_limits, become, no_new_privileges
from .codec import SafeCodec
from .frames import Proxy, recv_frame, send_frame
from .limits import CALL_OUTPUT_LIMIT
from .source import function_defs, module_name, project_modules


class _ExecutorLink:
    """The executor's loop: unpickles the judge's requests, answers them in safe JSON."""

    def __init__(self, sock: socket.socket, codec: SafeCodec, functions: dict):
        self.sock, self.codec, self.functions = sock, codec, functions
        self.handles: dict[int, object] = {}
        self.nonces: list[str] = []  # of the requests being answered, innermost last
        self.failure: BaseException | None = None  # why the candidate's module did not import

    def _load(self, raw: bytes):
        link = self

        class Unpickler(pickle.Unpickler):
            def persistent_load(self, pid):
                _, key, kind = pid
                return link.judge_handle(key, kind)

        return Unpickler(io.BytesIO(raw)).load()

    def judge_handle(self, key: int, kind: str):
        """A test's callable or generator, which stays in the judge: called back through the link."""
        if kind == "iter":
            return Proxy(lambda: self.call_back(key, "iter", (), {}))
        return lambda *args, **kwargs: self.call_back(key, "call", args, kwargs)

    def call_back(self, key, kind, args, kwargs):
        self._send({"op": "cb", "n": self.nonces[-1], "h": key, "kind": kind,
                    "args": self.codec.encode(tuple(args), self.handles),
                    "kwargs": self.codec.encode(dict(kwargs), self.handles)})
        return self.serve(until_reply=True)

    def _send(self, message: dict) -> None:
        send_frame(self.sock, json.dumps(message).encode())

    def serve(self, until_reply: bool = False):
        while True:
            raw = recv_frame(self.sock, 1 << 31)
            nonce = raw[:16].decode()
            try:
                message = self._load(raw[16:])
            except Exception as exc:  # noqa: BLE001 - e.g. an argument of a test-local class
                self._send({"op": "raise", "n": nonce, "exc": [
                    "builtins", "TypeError", {"$t": [str(exc)]},
                    f"TypeError: argument not received: {exc}"]})
                continue
            op = message[0]
            if op == "ret" and until_reply:
                return message[1]
            if op == "raise" and until_reply:
                name, text, exc = message[1]
                if isinstance(exc, BaseException) and name != "CandidateError":
                    raise exc
                raise RuntimeError(f"{name}: {text}")
            self.nonces.append(nonce)
            try:
                self._answer(message, nonce)
            finally:
                self.nonces.pop()

    def _answer(self, message, nonce: str) -> None:
        op = message[0]
        args, kwargs = (), {}
        out = io.StringIO()
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = _CappedText(out)
        try:
            if op == "call":
                _, index, args, kwargs = message
                if index not in self.functions:
                    raise _not_imported(self.failure)
                value = self.functions[index](*args, **kwargs)
                if isinstance(value, types.CoroutineType):
                    import asyncio

                    value = asyncio.run(value)
            elif op == "next":
                value = next(self.handles[message[1]])
            elif op == "invoke":
                _, key, args, kwargs = message
                value = self.handles[key](*args, **kwargs)
            else:
                raise ValueError(f"unknown request {op!r}")
            sys.stdout, sys.stderr = saved
            reply = {"op": "ret", "value": self.codec.encode(value, self.handles),
                     "state": self._state(args, kwargs)}
        except BaseException as exc:  # noqa: BLE001 - the function's exception, told by name
            sys.stdout, sys.stderr = saved
            reply = {"op": "raise", "exc": self.codec.exception(exc, self.handles)}
        reply["out"] = out.getvalue()
        reply["n"] = nonce
        try:
            self._send(reply)
        except (TypeError, ValueError, RecursionError) as exc:
            self._send({"op": "raise", "n": nonce, "exc": ["builtins", "TypeError",
                                                           {"$t": [str(exc)]}, f"TypeError: {exc}"]})

    def _state(self, args, kwargs) -> list:
        state = []
        for position, value in enumerate(list(args) + list(kwargs.values())):
            if isinstance(value, (list, dict, set, bytearray, io.StringIO)) or (
                    hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType))
                    and not callable(value)):
                try:
                    state.append([position, self.codec.encode(value)])
                except (TypeError, ValueError, RecursionError):
                    pass
        return state


def _not_imported(failure: BaseException | None) -> ImportError:
    """What a call to a function of a candidate module that failed to import raises."""
    why = f"{type(failure).__name__}: {failure}" if failure else "the function was not defined"
    return ImportError(f"the candidate's module did not import: {why}"[:2000])


class _CappedText(io.TextIOBase):
    def __init__(self, buffer: io.StringIO):
        self.buffer_ = buffer

    def write(self, text) -> int:
        if self.buffer_.tell() < CALL_OUTPUT_LIMIT:
            self.buffer_.write(str(text)[:CALL_OUTPUT_LIMIT])
        return len(text)

    def writable(self) -> bool:
        return True


def run_executor(job: dict, uid, groups, base: str, home: str, sock_fd: int, out_fd: int) -> None:
    """Forked child: imports the candidate's module and answers calls; never returns."""
    try:
        os.setsid()
        apply_limits(job["limits"])
        no_new_privileges()
        become(uid, groups)
        os.umask(0o007)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.closerange(3, sock_fd)
        os.closerange(sock_fd + 1, 65536)
        os.chdir(home)
        for entry in os.listdir(base):  # relative paths resolve as from the project's root
            try:  # (read-only: the executor's own files go in its home)
                os.symlink(os.path.join(base, entry), entry)
            except OSError:
                pass
        os.environ.update(HOME=home, TMPDIR=home)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        src = os.path.join(base, "src")
        sys.path[:0] = [base] + ([src] if os.path.isdir(src) else [])
        project = project_modules(base)
        for name in [m for m in sys.modules if m.split(".")[0] in project]:
            del sys.modules[name]
        sock = socket.socket(fileno=sock_fd)
        link = _ExecutorLink(sock, SafeCodec(project), {})
        try:
            link.functions = _import_candidate(job, base)
        except BaseException as exc:  # noqa: BLE001 - told to the judge on every call
            link.failure = exc
        link.serve()
    except BaseException:  # noqa: BLE001, S110 - the link closes; the judge fails the calls
        pass
    finally:
        os._exit(0)


def _import_candidate(job: dict, base: str) -> dict:
    """Import the project's module with the candidate's text in place of the file's; each
    forwarded function as defined.

    Through a finder on ``sys.meta_path``, so the module is imported once, at its natural place in
    its package's import order: a package whose ``__init__`` imports this module (sympy's does,
    through its whole tree) gets the candidate's version, and no half-made module is ever seen."""
    import importlib.abc
    import importlib.machinery
    import importlib.util

    functions: dict[int, object] = {}

    def register(index):
        def keep(func):
            functions[index] = func
            return func
        return keep

    builtins.__budgetpass_register__ = register
    tree = ast.parse(job["text"])
    defs = function_defs(tree)
    for index in job["forward"]:
        node = defs[index]
        decorator = ast.parse(f"__budgetpass_register__({index})", mode="eval").body
        node.decorator_list.append(ast.copy_location(decorator, node))
    ast.fix_missing_locations(tree)
    name = module_name(job["file"], base)
    path = os.path.join(base, job["file"])
    code = compile(tree, path, "exec")

    class CandidateLoader(importlib.machinery.SourceFileLoader):
        def get_code(self, fullname):
            return code

    class CandidateFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, search_path, target=None):
            if fullname != name:
                return None
            package = os.path.basename(path) == "__init__.py"
            return importlib.util.spec_from_file_location(
                name, path, loader=CandidateLoader(name, path),
                submodule_search_locations=[os.path.dirname(path)] if package else None)

    sys.meta_path.insert(0, CandidateFinder())
    importlib.import_module(name)
    return functions
