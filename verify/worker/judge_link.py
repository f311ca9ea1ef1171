"""The judge's side of the link: forwards each call to the executor with a fresh nonce, decodes
the answer (data only), applies the arguments' new state and serves the executor's callbacks."""

from __future__ import annotations

import io
import json
import pickle
import secrets
import socket
import sys
import types

from .codec import CandidateError, SafeCodec, as_int, as_list, set_state
from .frames import Proxy, recv_frame, send_frame
from .limits import CALL_OUTPUT_LIMIT, FRAME_LIMIT, MESSAGE_LIMIT


class JudgeLink:
    """Forwards calls to the executor and serves its callbacks; everything it receives is data."""

    def __init__(self, sock: socket.socket, codec: SafeCodec):
        self.sock, self.codec = sock, codec
        self.handles: dict[int, object] = {}  # the judge's callables/iterators the executor holds
        self.broken: str | None = None
        self.calls = 0

    def _pickle(self, message, nonce: str = "0" * 16) -> bytes:
        """``nonce`` (16 hex digits, fresh per request) travels in clear before the pickle: the
        answer must repeat it, so no answer can be sent ahead of the call it claims to answer."""
        link = self

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, (types.FunctionType, types.MethodType, types.GeneratorType,
                                    types.BuiltinMethodType)) and not _importable(obj):
                    key = len(link.handles)
                    link.handles[key] = obj
                    return ("h", key, "iter" if isinstance(obj, types.GeneratorType) else "call")
                return None

        buffer = io.BytesIO(nonce.encode())
        buffer.seek(0, io.SEEK_END)
        Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
        return buffer.getvalue()

    def forward(self, index: int, args: tuple, kwargs: dict):
        self.calls += 1
        return self._exchange(("call", index, args, kwargs), args, kwargs)

    def remote(self, key: int, kind: str):
        """A callable or iterator the executor holds, called through the link."""
        if kind == "iter":
            return Proxy(lambda: self._exchange(("next", key), (), {}))
        return lambda *args, **kwargs: self._exchange(("invoke", key, args, kwargs), args, kwargs)

    def _exchange(self, request: tuple, args, kwargs):
        if self.broken:
            raise CandidateError(self.broken)
        nonce = secrets.token_hex(8)
        try:
            payload = self._pickle(request, nonce)
        except Exception as exc:  # noqa: BLE001 - an argument that cannot go: that test errors
            raise TypeError(f"an argument cannot be sent to the sandboxed function: {exc}") from None
        try:
            send_frame(self.sock, payload)
            while True:
                raw = recv_frame(self.sock, FRAME_LIMIT)
                message = json.loads(raw)
                if type(message) is not dict or message.get("n") != nonce:
                    raise ValueError("an answer that does not belong to this call")
                op = message.get("op")
                if op == "cb":
                    self._callback(message)
                    continue
                out = message.get("out")
                if type(out) is str and out:
                    sys.stdout.write(out[:CALL_OUTPUT_LIMIT])
                if op == "ret":
                    value = self.codec.decode(message.get("value"), self.remote)
                    self._copy_back(message.get("state"), args, kwargs)
                    return value
                if op == "raise":
                    raise _Raised(self.codec.decode_exception(message.get("exc"), self.remote))
                raise ValueError("unknown answer")
        except _Raised as raised:
            raise raised.exc from None
        except CandidateError:
            raise
        except BaseException as exc:
            if isinstance(exc, (EOFError, OSError)):
                self.broken = "the candidate's process ended or closed the link"
            elif isinstance(exc, KeyboardInterrupt):
                raise
            else:
                self.broken = f"unreadable answer from the candidate's process: {type(exc).__name__}"
            try:
                self.sock.close()
            except OSError:
                pass
            raise CandidateError(self.broken) from None

    def _callback(self, message: dict) -> None:
        """The executor calls one of the judge's handles (a test's callable, a generator)."""
        try:
            target = self.handles[as_int(message.get("h"))]
            args = self.codec.decode(message.get("args"), self.remote)
            kwargs = self.codec.decode(message.get("kwargs"), self.remote)
            if not isinstance(args, tuple) or not isinstance(kwargs, dict) \
                    or not all(isinstance(k, str) for k in kwargs):
                raise ValueError("malformed callback")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise CandidateError(f"malformed callback from the candidate's process: {exc}") from None
        try:
            result = next(target) if message.get("kind") == "iter" else target(*args, **kwargs)
            reply = ("ret", result)
        except BaseException as exc:  # noqa: BLE001 - handed to the candidate's side
            outcome = type(exc).__module__.startswith(("_pytest", "pytest"))
            reply = ("raise", (type(exc).__name__ if not outcome else "CandidateError",
                               str(exc)[:MESSAGE_LIMIT], exc if _picklable(exc) else None))
        try:
            payload = self._pickle(reply)
        except Exception as exc:  # noqa: BLE001
            payload = self._pickle(("raise", ("TypeError", f"result cannot be sent: {exc}", None)))
        send_frame(self.sock, payload)

    def _copy_back(self, state, args, kwargs) -> None:
        """Top-level mutations the function made to its arguments (lists, dicts, sets, objects)."""
        if type(state) is not list:
            return
        values = list(args) + list(kwargs.values())
        for entry in state:
            position, new = as_list(entry, 2)
            target = values[as_int(position)]
            new = self.codec.decode(new, self.remote)
            if isinstance(target, list) and isinstance(new, list):
                target[:] = new
            elif isinstance(target, dict) and isinstance(new, dict) or isinstance(target, set) and isinstance(new, (set, frozenset)):
                target.clear()
                target.update(new)
            elif isinstance(target, bytearray) and isinstance(new, (bytes, bytearray)):
                target[:] = new
            elif isinstance(target, io.StringIO) and isinstance(new, io.StringIO):
                target.seek(0)
                target.truncate()
                target.write(new.getvalue())
                target.seek(new.tell())
            elif type(new) is type(target) and hasattr(new, "__dict__"):
                set_state(target, dict(vars(new)))


class _Raised(Exception):
    def __init__(self, exc: BaseException):
        self.exc = exc


def _importable(obj) -> bool:
    """Module-level functions and builtins travel by name; anything else is a handle."""
    if isinstance(obj, types.BuiltinMethodType):
        return isinstance(getattr(obj, "__self__", None), types.ModuleType) or \
            getattr(obj, "__self__", None) is None
    if isinstance(obj, types.FunctionType):
        return False  # test helpers keep their side effects in the judge
    return False


def _picklable(exc: BaseException) -> bool:
    try:
        pickle.dumps(exc)
        return True
    except Exception:  # noqa: BLE001
        return False
