"""The executor's answers as tagged JSON: plain values, a few standard-library value types,
the project's classes and instances by state, exceptions by name. Encoded in the executor,
decoded in the judge, where the input is hostile (see SECURITY.md for what crosses)."""

from __future__ import annotations

import base64
import io
import math
import sys

from .limits import DEPTH_LIMIT, FRAME_LIMIT, MESSAGE_LIMIT


class CandidateError(BaseException):
    """The function under test, run in the sandbox, failed in a way a test must not catch or
    skip: it raised something that cannot cross (pytest.skip/xfail/exit, SystemExit, a foreign
    type), its process died, or its answer was unreadable. A BaseException, so that
    ``pytest.raises(Exception)`` does not swallow it."""


class SafeCodec:
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
            return tuple(dec(x) for x in as_list(v))
        if tag == "$d":
            return {dec(k): dec(x) for k, x in (_pair(p) for p in as_list(v))}
        if tag in ("$s", "$fs"):
            items = (dec(x) for x in as_list(v))
            return set(items) if tag == "$s" else frozenset(items)
        if tag in ("$b", "$ba"):
            raw = base64.b64decode(_str(v), validate=True)
            return raw if tag == "$b" else bytearray(raw)
        if tag == "$i":
            return int(_str(v), 16)
        if tag == "$f":
            return float(_str(v))
        if tag == "$c":
            re_, im = as_list(v, 2)
            return complex(_num(re_), _num(im))
        if tag == "$r":
            return range(*(as_int(x) for x in as_list(v, 3)))
        if tag == "$sio":
            text, pos = as_list(v, 2)
            buffer = io.StringIO(_str(text))
            buffer.seek(as_int(pos))
            return buffer
        if tag == "$std":
            return _stdlib_decode(v)
        if tag == "$cls":
            module, qualname = as_list(v, 2)
            found = self.lookup(_str(module), _str(qualname), project_only=module != "builtins")
            if not isinstance(found, type):
                raise ValueError("not a class")
            return found
        if tag in ("$o", "$nt", "$e"):
            module, qualname, state = as_list(v, 3)
            cls = self.lookup(_str(module), _str(qualname), project_only=True)
            if not isinstance(cls, type):
                raise ValueError("not a class")
            if tag == "$e":
                return cls[_str(state)]
            if tag == "$nt":
                return cls._make(dec(x) for x in as_list(state))
            obj = cls.__new__(cls)
            set_state(obj, self._state(dec(state)))
            return obj
        if tag == "$x":
            return self.decode_exception(v, remote)
        if tag == "$h":
            key, kind = as_list(v, 2)
            if remote is None:
                raise ValueError("no link for a handle")
            return remote(as_int(key), _str(kind))
        raise ValueError(f"unknown tag {tag[:20]!r}")

    def _state(self, state) -> dict:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise ValueError("malformed object state")
        return state

    def decode_exception(self, v, remote=None) -> BaseException:
        module, qualname, args, message = as_list(v, 4)
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


def set_state(obj, state: dict) -> None:
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

    name, text = as_list(v, 2)
    if name == "Decimal":
        return decimal.Decimal(_str(text))
    if name == "Fraction":
        return fractions.Fraction(_str(text))
    if name in ("datetime", "date", "time"):
        return getattr(datetime, name).fromisoformat(_str(text))
    if name == "timedelta":
        days, seconds, micro = (as_int(x) for x in as_list(text, 3))
        return datetime.timedelta(days, seconds, micro)
    if name == "Path":
        return pathlib.Path(_str(text))
    raise ValueError("unknown value type")


def as_list(v, n: int | None = None) -> list:
    if type(v) is not list or (n is not None and len(v) != n):
        raise ValueError("malformed list")
    return v


def _pair(v) -> list:
    return as_list(v, 2)


def _str(v) -> str:
    if type(v) is not str:
        raise ValueError("expected a string")
    return v


def as_int(v) -> int:
    if type(v) is not int:
        raise ValueError("expected an integer")
    return v


def _num(v):
    if type(v) not in (int, float):
        raise ValueError("expected a number")
    return v
