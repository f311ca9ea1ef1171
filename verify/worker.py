"""Warm test worker: runs INSIDE the sandbox, imports pytest once, forks two children per candidate.

Standalone on purpose (stdlib + pytest only): it runs under the project's interpreter, which need
not have budgetpass installed, so the host binds this one file into the sandbox.

Why two processes per candidate. The candidate is hostile and the verdict must be computed where
it cannot reach it. So each candidate gets

- a **judge**: a fork of this warm worker that runs pytest on the project's own (trusted) tests
  against the project's own (trusted) module, in which every function whose body the candidate
  changed is replaced by a forwarder (same signature, same decorators, body swapped);
- an **executor**: a separate fork, under its own uid and limits, that imports the candidate's
  module and answers the forwarders' calls.

The judge sends a call's arguments with pickle (trusted to untrusted: any picklable object goes,
test callables and generators go as handles the executor calls back); the executor answers with a
safe, tagged JSON (plain data, project-class instances by state, a few stdlib value types,
exceptions by name, callables and iterators it returns as handles), read with a byte cap, and
bound to its request by a fresh nonce; anything it cannot parse fails that call. The candidate never holds the judge's memory, modules, fds or
result pipe: forging a report, patching pytest, planting conftest files, skipping or exiting from
inside the function all land in the executor, where they at most fail the calls. Only a run whose
judge saw at least one test pass, and none fail or error, is passed. Kept: the warm fork speed (the
executor is one more fork of the same warm process; a call costs a pipe round trip). Given up:
object identity across the call (``f(x) is x``), mutations below the arguments' top level, and
arguments' state the safe JSON cannot carry back (see SECURITY.md).

Protocol. The host writes JSON lines on stdin:
  {"op": "run", "id": N, "file": REL, "text": SOURCE, "original": TRUSTED SOURCE or null,
   "tests": [NODE_ID...], "limits": {...}, "files": {REL: TEXT}, "pytest_args": [ARG...]}
  {"op": "cancel", "id": N}
and EOF to stop. The worker answers JSON lines on the fd named by --result-fd:
  {"op": "ready", "seconds": S}
  {"op": "result", "id": N, "passed": ..., "outcomes": [[NODE_ID, OUTCOME, MESSAGE]...], ...}
"""

from __future__ import annotations

import argparse
import ast
import base64
import builtins
import ctypes
import io
import json
import math
import os
import pickle
import resource
import secrets
import selectors
import shutil
import signal
import socket
import struct
import sys
import time
import types

FIRST_UID = 60000  # slot s: judge uid FIRST_UID + 2s, executor uid FIRST_UID + 2s + 1 (as root)
MESSAGE_LIMIT = 4000
OUTPUT_LIMIT = 1 << 20  # bytes of raw stdout/stderr a candidate may write before it is killed
OUTPUT_TAIL = 2000
RESULT_LINE_LIMIT = 4 << 20  # the judge's report lines (trusted, but capped all the same)
FRAME_LIMIT = 32 << 20  # one executor answer
DEPTH_LIMIT = 200
CALL_OUTPUT_LIMIT = 64 << 10  # what a call printed, handed to the judge's stdout
# Built-in plugins that cost time per run and cannot change a test's outcome. The two exception
# plugins run gc.collect() at exit, which walks the whole (forked) heap: ~30 ms each.
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:junitxml", "-p", "no:pastebin",
                 "-p", "no:stepwise", "-p", "no:unraisableexception",
                 "-p", "no:threadexception")
INI_FILES = (("pytest.ini", None), (".pytest.ini", None), ("pyproject.toml", "[tool.pytest"),
             ("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]"))


def _send(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _no_new_privileges() -> None:
    """A setuid-root binary must not hand a candidate back the worker's capabilities."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except OSError:
        pass


def _not_dumpable() -> None:
    """Nobody of the same uid may ptrace this process or read its /proc/PID/mem and fds."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except OSError:
        pass


def _limit(limits: dict) -> None:
    for which, value in ((resource.RLIMIT_AS, limits["memory_bytes"]),
                         (resource.RLIMIT_CPU, limits["cpu_seconds"]),
                         (resource.RLIMIT_FSIZE, limits["file_bytes"]),
                         (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_NPROC, limits["processes"])):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _become(uid: int | None, groups: list[int]) -> None:
    if uid is not None:
        os.setgroups(groups)
        os.setgid(uid)
        os.setuid(uid)


# ---------------------------------------------------------------- which functions cross


def _defs(tree: ast.Module) -> list:
    """Functions and methods at module and class level, in source order (not nested in bodies)."""
    found = []

    def walk(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append(node)
            elif isinstance(node, ast.ClassDef):
                walk(node.body)
    walk(tree.body)
    return found


def forwarded_defs(original: str, candidate: str) -> list[int]:
    """Indices (in ``_defs`` order) of the functions whose body the candidate changed; ValueError
    if it changed anything outside function bodies (signatures, decorators, imports, classes)."""
    trees = [ast.parse(original), ast.parse(candidate)]
    bodies = []
    for tree in trees:
        defs = _defs(tree)
        bodies.append([ast.dump(ast.Module(body=d.body, type_ignores=[])) for d in defs])
        for d in defs:
            d.body = [ast.Pass()]
    if ast.dump(trees[0]) != ast.dump(trees[1]):
        raise ValueError("the candidate changes the module outside function bodies")
    return [i for i, (a, b) in enumerate(zip(*bodies)) if a != b]


def judge_source(original: str, indices: list[int]) -> str:
    """The trusted module with each forwarded function's statements replaced by a forwarder call
    (docstring, signature, decorators and line numbers kept)."""
    tree = ast.parse(original)
    defs = _defs(tree)
    lines = original.splitlines(keepends=True)
    edits = []
    for i in indices:
        node = defs[i]
        body = node.body
        doc = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
               and isinstance(body[0].value.value, str))
        call = f"return __budgetpass_forward__({i}, {_call_args(node.args)})"
        if doc and len(body) == 1:
            end = body[0]
            edits.append((end.end_lineno, end.end_col_offset, end.end_lineno, end.end_col_offset,
                          f"; {call}"))
            continue
        first = body[1] if doc else body[0]
        last = body[-1]
        pad = "\n" * (last.end_lineno - first.lineno)
        edits.append((first.lineno, first.col_offset, last.end_lineno, last.end_col_offset,
                      call + pad))
    for start_line, start_col, end_line, end_col, text in sorted(edits, reverse=True):
        head = lines[start_line - 1].encode()[:start_col].decode()
        tail = lines[end_line - 1].encode()[end_col:].decode()
        lines[start_line - 1:end_line] = [head + text + tail]
    return "".join(lines)


def _call_args(args: ast.arguments) -> str:
    positional = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg:
        positional.append("*" + args.vararg.arg)
    keywords = [f"{a.arg!r}: {a.arg}" for a in args.kwonlyargs]
    if args.kwarg:
        keywords.append("**" + args.kwarg.arg)
    return f"({', '.join(positional)}{',' if len(positional) == 1 else ''}), {{{', '.join(keywords)}}}"


def module_name(rel_file: str, base: str) -> str:
    parts = rel_file[:-3].split("/")
    if parts[0] == "src" and len(parts) > 1 and os.path.isdir(os.path.join(base, "src")):
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


# ---------------------------------------------------------------- data across the boundary


class CandidateError(BaseException):
    """The function under test, run in the sandbox, failed in a way a test must not catch or
    skip: it raised something that cannot cross (pytest.skip/xfail/exit, SystemExit, a foreign
    type), its process died, or its answer was unreadable. A BaseException, so that
    ``pytest.raises(Exception)`` does not swallow it."""


class _SafeCodec:
    """The executor's answers: tagged JSON that decodes into plain values and project types only."""

    def __init__(self, project_modules: set[str]):
        self.project = project_modules

    # -- encode (in the executor: everything it sends is data)
    def encode(self, value, handles: dict | None = None, depth: int = 0):
        if depth > DEPTH_LIMIT:
            raise ValueError("nested too deeply")
        enc = lambda v: self.encode(v, handles, depth + 1)
        kind = type(value)
        if value is None or kind in (bool, int, str):
            if kind is int and abs(value).bit_length() > 10000:
                return {"$i": hex(value)}
            return value
        if kind is float:
            return value if math.isfinite(value) else {"$f": repr(value)}
        if kind is list:
            return [enc(v) for v in value]
        if kind is tuple:
            return {"$t": [enc(v) for v in value]}
        if kind is dict:
            return {"$d": [[enc(k), enc(v)] for k, v in value.items()]}
        if kind in (set, frozenset):
            return {"$s" if kind is set else "$fs": [enc(v) for v in value]}
        if kind in (bytes, bytearray):
            return {"$b" if kind is bytes else "$ba": base64.b64encode(value).decode()}
        if kind is complex:
            return {"$c": [value.real, value.imag]}
        if kind is range:
            return {"$r": [value.start, value.stop, value.step]}
        if kind is io.StringIO:
            return {"$sio": [value.getvalue()[:FRAME_LIMIT], value.tell()]}
        stdlib = _stdlib_value(value)
        if stdlib is not None:
            return stdlib
        if isinstance(value, type):
            return {"$cls": [value.__module__, value.__qualname__]}
        if isinstance(value, BaseException):
            return {"$x": self.exception(value, handles)}
        module = getattr(kind, "__module__", "")
        if module.split(".")[0] in self.project:
            import enum

            if isinstance(value, enum.Enum):
                return {"$e": [module, kind.__qualname__, value.name]}
            if isinstance(value, tuple) and hasattr(kind, "_fields"):
                return {"$nt": [module, kind.__qualname__, [enc(v) for v in value]]}
            state = getattr(value, "__dict__", None)
            if state is None and hasattr(kind, "__slots__"):
                state = {s: getattr(value, s) for s in _slots(kind) if hasattr(value, s)}
            if isinstance(state, dict):
                return {"$o": [module, kind.__qualname__, enc(dict(state))]}
        if handles is not None and (callable(value) or hasattr(value, "__next__")):
            key = len(handles)
            handles[key] = value
            return {"$h": [key, "iter" if hasattr(value, "__next__") else "call"]}
        raise TypeError(f"a {kind.__module__}.{kind.__qualname__} cannot cross from the sandbox "
                        "(plain data, project classes and their instances, callables and "
                        "iterators do)")

    def exception(self, exc: BaseException, handles=None) -> list:
        kind = type(exc)
        try:
            args = self.encode(tuple(exc.args), handles)
        except (TypeError, ValueError, RecursionError):
            args = {"$t": [str(exc)[:MESSAGE_LIMIT]]}
        return [kind.__module__, kind.__qualname__, args, f"{kind.__name__}: {exc}"[:MESSAGE_LIMIT]]

    # -- decode (in the judge: the input is hostile)
    def decode(self, data, remote=None, depth: int = 0):
        if depth > DEPTH_LIMIT:
            raise ValueError("nested too deeply")
        dec = lambda v: self.decode(v, remote, depth + 1)
        if data is None or type(data) in (bool, int, str, float):
            return data
        if type(data) is list:
            return [dec(v) for v in data]
        if type(data) is not dict or len(data) != 1:
            raise ValueError("malformed value")
        (tag, v), = data.items()
        if tag == "$t":
            return tuple(dec(x) for x in _list(v))
        if tag == "$d":
            return {dec(k): dec(x) for k, x in (_pair(p) for p in _list(v))}
        if tag in ("$s", "$fs"):
            items = (dec(x) for x in _list(v))
            return set(items) if tag == "$s" else frozenset(items)
        if tag in ("$b", "$ba"):
            raw = base64.b64decode(_str(v), validate=True)
            return raw if tag == "$b" else bytearray(raw)
        if tag == "$i":
            return int(_str(v), 16)
        if tag == "$f":
            return float(_str(v))
        if tag == "$c":
            re_, im = _list(v, 2)
            return complex(_num(re_), _num(im))
        if tag == "$r":
            return range(*(_int(x) for x in _list(v, 3)))
        if tag == "$sio":
            text, pos = _list(v, 2)
            buffer = io.StringIO(_str(text))
            buffer.seek(_int(pos))
            return buffer
        if tag == "$std":
            return _stdlib_decode(v)
        if tag == "$cls":
            module, qualname = _list(v, 2)
            found = self.lookup(_str(module), _str(qualname), project_only=module != "builtins")
            if not isinstance(found, type):
                raise ValueError("not a class")
            return found
        if tag in ("$o", "$nt", "$e"):
            module, qualname, state = _list(v, 3)
            cls = self.lookup(_str(module), _str(qualname), project_only=True)
            if not isinstance(cls, type):
                raise ValueError("not a class")
            if tag == "$e":
                return cls[_str(state)]
            if tag == "$nt":
                return cls._make(dec(x) for x in _list(state))
            obj = cls.__new__(cls)
            _set_state(obj, self._state(dec(state)))
            return obj
        if tag == "$x":
            return self.decode_exception(v, remote)
        if tag == "$h":
            key, kind = _list(v, 2)
            if remote is None:
                raise ValueError("no link for a handle")
            return remote(_int(key), _str(kind))
        raise ValueError(f"unknown tag {tag[:20]!r}")

    def _state(self, state) -> dict:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise ValueError("malformed object state")
        return state

    def decode_exception(self, v, remote=None) -> BaseException:
        module, qualname, args, message = _list(v, 4)
        module, qualname, message = _str(module), _str(qualname), _str(message)
        try:
            cls = self.lookup(module, qualname)
        except Exception:  # noqa: BLE001 - any name that does not resolve: not a known type
            cls = None
        forbidden = (SystemExit, KeyboardInterrupt, GeneratorExit, CandidateError)
        if (not isinstance(cls, type) or not issubclass(cls, BaseException)
                or issubclass(cls, forbidden) or module.split(".")[0] in ("_pytest", "pytest")):
            outcome = module.startswith("_pytest") or (
                module == "builtins" and qualname in ("Skipped", "XFailed", "Exit", "Failed"))
            what = f"pytest's {qualname} (pytest.skip/xfail/exit/fail)" if outcome else \
                f"{module}.{qualname}"
            return CandidateError(f"the function raised {what} in the sandbox ({message}); that "
                                  "counts as a failure")
        args = self.decode(args, remote)
        args = tuple(args) if isinstance(args, tuple) else (args,)
        try:
            return cls(*args)
        except Exception:  # noqa: BLE001 - a constructor that wants other arguments
            exc = cls.__new__(cls)
            exc.args = args
            return exc

    def lookup(self, module: str, qualname: str, project_only: bool = False):
        """A class by name: builtins, the standard library or the project (loaded from its
        files, never from anything the candidate sent)."""
        top = module.split(".")[0]
        allowed = top in self.project or (not project_only and (
            module == "builtins" or top in getattr(sys, "stdlib_module_names", ())))
        if not allowed or top in ("_pytest", "pytest"):
            raise ValueError(f"{module}.{qualname} may not cross")
        obj = sys.modules.get(module)
        if obj is None:
            import importlib

            obj = importlib.import_module(module)
        for part in qualname.split("."):
            if part.startswith("__") or part == "<locals>":
                raise ValueError("not a reachable class")
            obj = getattr(obj, part)
        return obj


def _slots(kind: type) -> list[str]:
    names = []
    for klass in kind.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


def _set_state(obj, state: dict) -> None:
    if hasattr(obj, "__dict__"):
        obj.__dict__.clear()
        obj.__dict__.update(state)
    else:
        for name, value in state.items():
            object.__setattr__(obj, name, value)


def _stdlib_value(value):
    import datetime
    import decimal
    import fractions
    import pathlib

    kind = type(value)
    if kind is decimal.Decimal:
        return {"$std": ["Decimal", str(value)]}
    if kind is fractions.Fraction:
        return {"$std": ["Fraction", str(value)]}
    if kind is datetime.date or (kind in (datetime.datetime, datetime.time)
                                 and value.tzinfo is None):
        return {"$std": [kind.__name__, value.isoformat()]}
    if kind is datetime.timedelta:
        return {"$std": ["timedelta", [value.days, value.seconds, value.microseconds]]}
    if isinstance(value, pathlib.PurePath):
        return {"$std": ["Path", str(value)]}
    return None


def _stdlib_decode(v):
    import datetime
    import decimal
    import fractions
    import pathlib

    name, text = _list(v, 2)
    if name == "Decimal":
        return decimal.Decimal(_str(text))
    if name == "Fraction":
        return fractions.Fraction(_str(text))
    if name in ("datetime", "date", "time"):
        return getattr(datetime, name).fromisoformat(_str(text))
    if name == "timedelta":
        days, seconds, micro = (_int(x) for x in _list(text, 3))
        return datetime.timedelta(days, seconds, micro)
    if name == "Path":
        return pathlib.Path(_str(text))
    raise ValueError("unknown value type")


def _list(v, n: int | None = None) -> list:
    if type(v) is not list or (n is not None and len(v) != n):
        raise ValueError("malformed list")
    return v


def _pair(v) -> list:
    return _list(v, 2)


def _str(v) -> str:
    if type(v) is not str:
        raise ValueError("expected a string")
    return v


def _int(v) -> int:
    if type(v) is not int:
        raise ValueError("expected an integer")
    return v


def _num(v):
    if type(v) not in (int, float):
        raise ValueError("expected a number")
    return v


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the link")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket, cap: int) -> bytes:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    if size > cap:
        raise ValueError(f"a {size}-byte answer is over the {cap}-byte limit")
    return _recv_exact(sock, size)


# ---------------------------------------------------------------- the judge's side of the link


class _JudgeLink:
    """Forwards calls to the executor and serves its callbacks; everything it receives is data."""

    def __init__(self, sock: socket.socket, codec: _SafeCodec):
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
            return _Proxy(lambda: self._exchange(("next", key), (), {}))
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
            _send_frame(self.sock, payload)
            while True:
                raw = _recv_frame(self.sock, FRAME_LIMIT)
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
            target = self.handles[_int(message.get("h"))]
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
        _send_frame(self.sock, payload)

    def _copy_back(self, state, args, kwargs) -> None:
        """Top-level mutations the function made to its arguments (lists, dicts, sets, objects)."""
        if type(state) is not list:
            return
        values = list(args) + list(kwargs.values())
        for entry in state:
            position, new = _list(entry, 2)
            target = values[_int(position)]
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
                _set_state(target, dict(vars(new)))


class _Proxy:
    """An iterator on the other side of the link."""

    def __init__(self, step):
        self.step = step

    def __iter__(self):
        return self

    def __next__(self):
        return self.step()


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


# ---------------------------------------------------------------- the executor


class _ExecutorLink:
    """The executor's loop: unpickles the judge's requests, answers them in safe JSON."""

    def __init__(self, sock: socket.socket, codec: _SafeCodec, functions: dict):
        self.sock, self.codec, self.functions = sock, codec, functions
        self.handles: dict[int, object] = {}
        self.nonces: list[str] = []  # of the requests being answered, innermost last

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
            return _Proxy(lambda: self.call_back(key, "iter", (), {}))
        return lambda *args, **kwargs: self.call_back(key, "call", args, kwargs)

    def call_back(self, key, kind, args, kwargs):
        self._send({"op": "cb", "n": self.nonces[-1], "h": key, "kind": kind,
                    "args": self.codec.encode(tuple(args), self.handles),
                    "kwargs": self.codec.encode(dict(kwargs), self.handles)})
        return self.serve(until_reply=True)

    def _send(self, message: dict) -> None:
        _send_frame(self.sock, json.dumps(message).encode())

    def serve(self, until_reply: bool = False):
        while True:
            raw = _recv_frame(self.sock, 1 << 31)
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


class _CappedText(io.TextIOBase):
    def __init__(self, buffer: io.StringIO):
        self.buffer_ = buffer

    def write(self, text) -> int:
        if self.buffer_.tell() < CALL_OUTPUT_LIMIT:
            self.buffer_.write(str(text)[:CALL_OUTPUT_LIMIT])
        return len(text)

    def writable(self) -> bool:
        return True


def _executor(job: dict, uid, groups, base: str, home: str, sock_fd: int, out_fd: int) -> None:
    """Forked child: imports the candidate's module and answers calls; never returns."""
    try:
        os.setsid()
        _limit(job["limits"])
        _no_new_privileges()
        _become(uid, groups)
        os.umask(0o007)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.closerange(3, sock_fd)
        os.closerange(sock_fd + 1, 65536)
        os.chdir(home)
        os.environ.update(HOME=home, TMPDIR=home)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        src = os.path.join(base, "src")
        sys.path[:0] = [base] + ([src] if os.path.isdir(src) else [])
        project = _project_modules(base)
        for name in [m for m in sys.modules if m.split(".")[0] in project]:
            del sys.modules[name]
        sock = socket.socket(fileno=sock_fd)
        functions = _import_candidate(job, base)
        _ExecutorLink(sock, _SafeCodec(project), functions).serve()
    except BaseException:  # noqa: BLE001, S110 - the link closes; the judge fails the calls
        pass
    finally:
        os._exit(0)


def _import_candidate(job: dict, base: str) -> dict:
    """The candidate's module, registered under its name; each forwarded function as defined."""
    import importlib.util

    functions: dict[int, object] = {}

    def register(index):
        def keep(func):
            functions[index] = func
            return func
        return keep

    builtins.__budgetpass_register__ = register
    tree = ast.parse(job["text"])
    defs = _defs(tree)
    for index in job["forward"]:
        node = defs[index]
        decorator = ast.parse(f"__budgetpass_register__({index})", mode="eval").body
        node.decorator_list.append(ast.copy_location(decorator, node))
    ast.fix_missing_locations(tree)
    name = module_name(job["file"], base)
    path = os.path.join(base, job["file"])
    package = os.path.basename(path) == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[os.path.dirname(path)] if package else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if "." in name:
        parent = importlib.import_module(name.rsplit(".", 1)[0])
        setattr(parent, name.rsplit(".", 1)[1], module)
    exec(compile(tree, path, "exec"), module.__dict__)  # noqa: S102 - the candidate, sandboxed
    return functions


# ---------------------------------------------------------------- the judge


class _Reporter:
    """pytest plugin in the judge: streams collection, per-test outcomes and 'done' to the worker."""

    def __init__(self, fd: int, link: _JudgeLink | None):
        self.fd, self.link = fd, link
        self.reports: dict[str, list] = {}
        self.calls_before = 0

    def pytest_collectreport(self, report):
        if report.failed:
            _send(self.fd, {"op": "collect_error", "node": report.nodeid,
                            "message": str(report.longrepr)[-MESSAGE_LIMIT:]})

    def pytest_collection_finish(self, session):
        _send(self.fd, {"op": "collected", "tests": [item.nodeid for item in session.items]})

    def pytest_runtest_logstart(self, nodeid, location):
        self.calls_before = self.link.calls if self.link else 0
        _send(self.fd, {"op": "start", "node": nodeid})

    def pytest_runtest_logreport(self, report):
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid, location):
        reports = self.reports.pop(nodeid, [])
        outcome, message = _outcome(reports)
        called = self.link is not None and self.link.calls > self.calls_before
        if outcome == "skipped" and called and any(r.when == "call" and r.skipped
                                                   and not hasattr(r, "wasxfail") for r in reports):
            outcome, message = "failed", "skipped after the function under test was called"
        _send(self.fd, {"op": "test", "node": nodeid, "outcome": outcome,
                        "message": message[-MESSAGE_LIMIT:],
                        "seconds": sum(float(r.duration) for r in reports)})

    def pytest_sessionfinish(self, session, exitstatus):
        _send(self.fd, {"op": "done", "exitstatus": int(exitstatus)})


def _outcome(reports) -> tuple[str, str]:
    """passed | failed | error | skipped, and the failing assertion's message."""
    outcome, message = "passed" if reports else "error", "" if reports else "no report"
    for report in reports:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            text = getattr(crash, "message", None) or str(report.longrepr)
            if report.when == "call":
                return "failed", text
            outcome, message = "error", f"{report.when}: {text}"
        elif report.skipped and report.when in ("setup", "call") and outcome == "passed":
            outcome = "skipped"
    return outcome, message


def _ini_args(work: str) -> list[str]:
    """Pin pytest's configuration to the project's own file in the judge's copy (or none)."""
    for name, section in INI_FILES:
        path = os.path.join(work, name)
        if os.path.isfile(path):
            if section is None:
                return ["-c", path]
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    if section in handle.read():
                        return ["-c", path]
            except OSError:
                pass
    return ["-c", os.devnull]


def _shared_tmp(group_dirs: bool) -> None:
    """tmp_path folders the executor (another uid of the judge's group) may write into."""
    if not group_dirs:
        return
    import _pytest.tmpdir

    factory = _pytest.tmpdir.TempPathFactory
    original_mktemp, original_base = factory.mktemp, factory.getbasetemp

    def opened(path, mode):
        os.chmod(path, mode)
        return path

    factory.mktemp = lambda self, *a, **k: opened(original_mktemp(self, *a, **k), 0o2770)
    factory.getbasetemp = lambda self: opened(original_base(self), 0o750)


def _judge(job: dict, uid, groups, base: str, rundir: str, sock_fd: int | None,
           result_fd: int, out_fd: int) -> None:
    """Forked child: pytest on the trusted tests and module; never returns."""
    code = 1
    try:
        os.setsid()
        _limit(job["limits"])
        _no_new_privileges()
        _become(uid, groups)
        _not_dumpable()
        os.umask(0o022)  # the judge's copy: readable, never writable, by the executor's uid
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        keep = sorted({result_fd, *([sock_fd] if sock_fd is not None else [])})
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 65536)
        work = os.path.join(rundir, "w")
        tmp = os.path.join(rundir, "t")
        shutil.copytree(base, work, symlinks=True)
        os.mkdir(tmp, 0o750)
        trusted = job["original"]
        files = dict(job.get("files", {}))
        files[job["file"]] = judge_source(trusted, job["forward"]) if sock_fd is not None \
            else job["text"]
        for rel, text in files.items():
            with open(os.path.join(work, rel), "w", encoding="utf-8") as handle:
                handle.write(text)
        os.chdir(work)
        os.environ.update(HOME=tmp, TMPDIR=tmp)
        src = os.path.join(work, "src")
        sys.path[:0] = [work] + ([src] if os.path.isdir(src) else [])
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        project = _project_modules(work)
        for name in [m for m in sys.modules if m.split(".")[0] in project]:
            del sys.modules[name]  # the judge's version must be imported, not a warm copy
        link = None
        if sock_fd is not None:
            link = _JudgeLink(socket.socket(fileno=sock_fd), _SafeCodec(project))
            builtins.__budgetpass_forward__ = link.forward
        _shared_tmp(uid is not None)
        os.umask(0o007)  # files the tests make: shared with the executor through its group
        import pytest

        doctests = any(not _is_test_file(t.split("::")[0]) for t in job["tests"])
        reporter = _Reporter(result_fd, link)
        pytest.main(["-q", "--tb=line", "--color=no", "--rootdir", work, "--confcutdir", work,
                     *_ini_args(work), "--basetemp", os.path.join(tmp, "pytest"), *QUIET_PLUGINS,
                     *(["--doctest-modules"] if doctests else []),
                     "-W", "ignore::pytest.PytestAssertRewriteWarning",
                     *job.get("pytest_args", []), *job["tests"]],
                    plugins=[reporter])
        code = 0
    except BaseException:  # noqa: BLE001 - anything here fails the run, said in its output
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _project_modules(folder: str) -> set[str]:
    """Top-level module names the project itself defines (in its root and in src/)."""
    names = set()
    for place in (folder, os.path.join(folder, "src")):
        try:
            entries = os.listdir(place)
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".py"):
                names.add(entry[:-3])
            elif os.path.isdir(os.path.join(place, entry)) and entry.isidentifier():
                names.add(entry)
    return names


# ---------------------------------------------------------------- the worker


class _Running:
    def __init__(self, job, slot, rundir, deadline):
        self.job, self.slot, self.rundir, self.deadline = job, slot, rundir, deadline
        self.pids: list[int] = []
        self.pidfds: dict[int, int] = {}
        self.judge = 0
        self.judge_status: int | None = None
        self.reader: int | None = None  # the judge's result pipe
        self.output: int | None = None  # everyone's stdout/stderr
        self.buffer = b""
        self.out = bytearray()
        self.out_bytes = 0
        self.messages: list[dict] = []
        self.garbled = 0
        self.problems: list[str] = []
        self.started = time.monotonic()
        self.timed_out = False
        self.cancelled = False


class Worker:
    def __init__(self, base: str, scratch: str, slots: int, result_fd: int, cgroups: str = ""):
        self.base, self.scratch, self.result_fd = base, scratch, result_fd
        self.free_slots = list(range(slots))
        self.root = os.geteuid() == 0
        self.cgroups = cgroups
        self.queue: list[dict] = []
        self.running: dict[int, _Running] = {}  # by judge pid
        self.selector = selectors.DefaultSelector()
        self.stdin_buffer = b""
        self.eof = False

    def serve(self) -> None:
        self.selector.register(0, selectors.EVENT_READ, ("stdin", None))
        while not (self.eof and not self.running and not self.queue):
            self._start_queued()
            timeout = None
            if self.running:
                timeout = max(0.0, min(r.deadline for r in self.running.values()) - time.monotonic())
            for key, _ in self.selector.select(timeout):
                kind, run = key.data
                if kind == "stdin":
                    self._read_stdin()
                elif run.judge not in self.running:
                    continue  # (its run finished earlier in this batch)
                elif kind == "pipe":
                    self._read_results(run)
                elif kind == "output":
                    self._read_output(run)
                elif kind == "exit":
                    self._finish(run)
            now = time.monotonic()
            for run in list(self.running.values()):
                if now >= run.deadline:
                    run.timed_out = True
                    self._kill(run)
                    self._finish(run)

    def _read_stdin(self) -> None:
        data = os.read(0, 1 << 20)
        if not data:
            self.eof = True
            self.selector.unregister(0)
            self.queue.clear()
            for run in list(self.running.values()):
                run.cancelled = True
                self._kill(run)
                self._finish(run)
            return
        self.stdin_buffer += data
        *lines, self.stdin_buffer = self.stdin_buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            job = json.loads(line)
            if job["op"] == "run":
                self.queue.append(job)
            elif job["op"] == "cancel":
                for queued in [j for j in self.queue if j["id"] == job["id"]]:
                    self.queue.remove(queued)
                    _send(self.result_fd, {
                        "op": "result", "id": queued["id"], "passed": False, "cancelled": True,
                        "outcomes": [[t, "error", "cancelled"] for t in queued["tests"]],
                        "seconds": 0.0, "timed_out": False, "returncode": None,
                        "problems": ["cancelled before it ran"], "output": ""})
                for run in list(self.running.values()):
                    if run.job["id"] == job["id"]:
                        run.cancelled = True
                        self._kill(run)
                        self._finish(run)

    def _uids(self, slot: int) -> tuple:
        if not self.root:
            return None, None, [], []
        judge = FIRST_UID + 2 * slot
        return judge, judge + 1, [], [judge]  # the executor joins the judge's group (tmp_path)

    def _rundir(self, judge_uid, slot: int) -> str:
        """A fresh folder no candidate could have made or prepared (a random, new name), in the
        slot's own folder (in bwrap: the slot's own size-limited tmpfs, so that one candidate's
        files cannot use another's share of the disk)."""
        own = os.path.join(self.scratch, f"slot{slot}")
        os.makedirs(own, 0o711, exist_ok=True)
        while True:
            path = os.path.join(own, "run-" + secrets.token_hex(8))
            try:
                os.mkdir(path, 0o750)
                break
            except FileExistsError:
                continue
        if judge_uid is not None:
            os.chown(path, judge_uid, judge_uid)
        return path

    def _start_queued(self) -> None:
        while self.queue and self.free_slots:
            job = self.queue.pop(0)
            slot = self.free_slots.pop(0)
            run = _Running(job, slot, "", time.monotonic() + job["limits"]["wall_seconds"])
            try:
                self._start(run)
            except Exception as exc:  # noqa: BLE001 - a run that cannot start fails alone
                run.problems.append(f"could not start the run: {type(exc).__name__}: {exc}")
                run.judge = -1 - slot
                self.running[run.judge] = run
                self._finish(run)

    def _start(self, run: _Running) -> None:
        job = run.job
        judge_uid, exec_uid, judge_groups, exec_groups = self._uids(run.slot)
        original = job.get("original")
        if original is None:
            with open(os.path.join(self.base, job["file"]), encoding="utf-8") as handle:
                original = handle.read()
        job["original"] = original
        try:
            job["forward"] = forwarded_defs(original, job["text"])
        except SyntaxError as exc:
            job["forward"] = []
            raise ValueError(f"the candidate does not parse: {exc}") from None
        run.rundir = self._rundir(judge_uid, run.slot)
        home = os.path.join(run.rundir, "x")
        os.mkdir(home, 0o700)
        if exec_uid is not None:
            os.chown(home, exec_uid, exec_uid)
        result_r, result_w = os.pipe()
        out_r, out_w = os.pipe()
        judge_sock = exec_sock = None
        if job["forward"]:
            judge_sock, exec_sock = socket.socketpair()
        if exec_sock is not None:
            pid = os.fork()
            if pid == 0:
                self._cgroup(run.slot)
                _executor(job, exec_uid, exec_groups, self.base, home, exec_sock.fileno(), out_w)
            run.pids.append(pid)
            exec_sock.close()
        pid = os.fork()
        if pid == 0:
            self._cgroup(run.slot)
            _judge(job, judge_uid, judge_groups, self.base, run.rundir,
                   judge_sock.fileno() if judge_sock else None, result_w, out_w)
        run.judge = pid
        run.pids.append(pid)
        if judge_sock is not None:
            judge_sock.close()
        os.close(result_w)
        os.close(out_w)
        for fd in (result_r, out_r):
            os.set_blocking(fd, False)
        run.reader, run.output = result_r, out_r
        self.running[pid] = run
        self.selector.register(result_r, selectors.EVENT_READ, ("pipe", run))
        self.selector.register(out_r, selectors.EVENT_READ, ("output", run))
        pidfd = os.pidfd_open(pid)
        run.pidfds[pid] = pidfd
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", run))

    def _cgroup(self, slot: int) -> None:
        """Join this slot's cgroups (memory and processes for the candidate and all it starts)."""
        if not self.cgroups:
            return
        for folder in self.cgroups.split(","):
            try:
                with open(os.path.join(folder, f"slot{slot}", "cgroup.procs"), "w") as handle:
                    handle.write("0")
            except OSError:
                pass

    def _read_results(self, run: _Running) -> None:
        """The judge's report lines: capped, and any line that does not parse is counted."""
        try:
            data = os.read(run.reader, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self._close(run, "reader")
            return
        run.buffer += data
        *lines, run.buffer = run.buffer.split(b"\n")
        if len(run.buffer) > RESULT_LINE_LIMIT:
            run.garbled += 1
            run.buffer = b""
            self._kill(run)
        for line in lines:
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise TypeError("not an object")
            except Exception:  # noqa: BLE001 - any parse failure fails this run only
                run.garbled += 1
                continue
            run.messages.append(message)

    def _read_output(self, run: _Running) -> None:
        try:
            data = os.read(run.output, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self._close(run, "output")
            return
        run.out_bytes += len(data)
        run.out += data
        del run.out[:-OUTPUT_TAIL]
        if run.out_bytes > OUTPUT_LIMIT and not run.problems:
            run.problems.append(f"the run wrote over {OUTPUT_LIMIT} bytes of output: killed")
            self._kill(run)

    def _close(self, run: _Running, which: str) -> None:
        fd = getattr(run, which)
        if fd is not None:
            self.selector.unregister(fd)
            os.close(fd)
            setattr(run, which, None)

    def _kill(self, run: _Running) -> None:
        for pid in run.pids:
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _finish(self, run: _Running) -> None:
        if run.judge not in self.running:
            return
        del self.running[run.judge]
        status = None
        if run.judge > 0:
            _, status = os.waitpid(run.judge, 0)
        if run.reader is not None:
            while run.reader is not None:  # whatever the judge wrote before it ended
                before = len(run.messages) + run.garbled
                self._read_results(run)
                if len(run.messages) + run.garbled == before:
                    break
            self._close(run, "reader")
        self._kill(run)  # the executor, and the groups of both
        for pid in run.pids[:-1] if run.judge > 0 else run.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if run.output is not None:
            for _ in range(64):  # what is left in the pipe, up to the cap
                before = run.out_bytes
                self._read_output(run)
                if run.output is None or run.out_bytes == before:
                    break
            self._close(run, "output")
        for fd in run.pidfds.values():
            self.selector.unregister(fd)
            os.close(fd)
        seconds = time.monotonic() - run.started
        self._clean_slot(run)
        self.free_slots.append(run.slot)
        self.free_slots.sort()
        _send(self.result_fd, _verdict(run, status, seconds, bytes(run.out).decode("utf-8",
                                                                                   "replace")))

    def _clean_slot(self, run: _Running) -> None:
        """Kill everything the candidate left running (by uid when we can) and delete its folder."""
        if self.root:
            for uid in self._uids(run.slot)[:2]:
                pid = os.fork()
                if pid == 0:
                    try:
                        os.setgroups([])
                        os.setgid(uid)
                        os.setuid(uid)
                        for _ in range(5):  # a fork bomb may still be forking: sweep until none
                            try:
                                os.kill(-1, signal.SIGKILL)
                            except ProcessLookupError:
                                break
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
        if run.rundir:
            shutil.rmtree(run.rundir, ignore_errors=True)


def _verdict(run: _Running, status: int | None, seconds: float, output: str) -> dict:
    """Outcomes from the judge's messages; a missing 'done' or a garbled line fails the run."""
    wall = run.job["limits"]["wall_seconds"]
    collected: list[str] = []
    final: dict[str, tuple[str, str]] = {}
    test_seconds = 0.0
    current = None
    done = None
    problems = list(run.problems)
    for message in run.messages:
        op = message.get("op")
        if op == "collected":
            collected = [str(n) for n in message.get("tests", [])]
        elif op == "start":
            current = message.get("node")
        elif op == "test":
            final[str(message.get("node"))] = (str(message.get("outcome")),
                                               str(message.get("message", "")))
            current = None
            try:
                test_seconds += float(message.get("seconds", 0.0))
            except (TypeError, ValueError):
                pass
        elif op == "collect_error":
            problems.append(f"collection error in {message.get('node')}: {message.get('message')}")
        elif op == "done":
            done = message.get("exitstatus")
    if run.garbled:
        problems.append(f"{run.garbled} garbled report line(s)")
    if status is None:
        exit_text = "not started"
    elif os.WIFSIGNALED(status):
        exit_text = f"killed by signal {os.WTERMSIG(status)}"
    else:
        exit_text = f"exit code {os.WEXITSTATUS(status)}"
    outcomes = []
    for node in collected or run.job["tests"]:
        if node in final:
            outcomes.append([node, *final[node]])
        elif run.timed_out and node == current:
            outcomes.append([node, "timeout", f"killed after {wall:g} s"])
        elif run.cancelled:
            outcomes.append([node, "error", "cancelled"])
        elif node == current:
            outcomes.append([node, "error", f"the test process ended during this test ({exit_text})"])
        elif run.timed_out:
            outcomes.append([node, "timeout", f"not run: the run was killed after {wall:g} s"])
        else:
            outcomes.append([node, "error", problems[0] if problems else
                             f"not run: the test process ended early ({exit_text})"])
    complete = (done is not None and collected and all(n in final for n in collected))
    exited = status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    passed = (complete and done == 0 and not problems and not run.timed_out and not run.cancelled
              and exited and any(o[1] == "passed" for o in outcomes)
              and all(o[1] in ("passed", "skipped") for o in outcomes))
    if not complete and not problems and not run.timed_out and not run.cancelled:
        problems.append(f"the test process ended before pytest finished ({exit_text})")
    returncode = None if status is None else (
        os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status))
    return {"op": "result", "id": run.job["id"], "passed": bool(passed), "outcomes": outcomes,
            "seconds": seconds, "timed_out": run.timed_out, "cancelled": run.cancelled,
            "returncode": returncode, "problems": problems, "output": output,
            "test_seconds": test_seconds}


def _warm_up(preload: list[str], project_modules: set[str]) -> None:
    """Import pytest, its own modules and plugins, and the project's third-party test deps once."""
    import importlib
    import pkgutil

    import _pytest
    import pytest  # noqa: F401

    for info in pkgutil.walk_packages(_pytest.__path__, "_pytest."):
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001, S110 - optional parts (e.g. for other Pythons) may not import
            pass
    from importlib.metadata import entry_points

    for entry in entry_points(group="pytest11"):
        try:
            entry.load()
        except Exception:  # noqa: BLE001, S110 - a broken plugin fails visibly in the child
            pass
    for name in preload:
        if name in project_modules:
            continue  # each candidate's child imports the project afresh
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S110 - a test dep that fails here fails in the child, visibly
            pass
    import asyncio  # noqa: F401 - for async functions under test
    import datetime  # noqa: F401
    import decimal  # noqa: F401
    import fractions  # noqa: F401
    import pathlib  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("--preload", default="")
    parser.add_argument("--cgroups", default="", help="comma-separated cgroup folders with slotN/")
    parser.add_argument("--same-uid", action="store_true",
                        help="never switch candidates to their own uid")
    parser.add_argument("--cold", action="store_true", help="no warm-up: the fresh baseline")
    args = parser.parse_args()
    start = time.monotonic()
    sys.dont_write_bytecode = True
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if not args.cold:
        _warm_up([m for m in args.preload.split(",") if m], _project_modules(args.base))
        import gc

        gc.freeze()  # children's collections skip the warm heap (and keep its pages shared)
    _send(args.result_fd, {"op": "ready", "seconds": time.monotonic() - start,
                           "root": os.geteuid() == 0})
    worker = Worker(args.base, args.scratch, args.slots, args.result_fd, args.cgroups)
    worker.root = worker.root and not args.same_uid
    worker.serve()


if __name__ == "__main__":
    main()
