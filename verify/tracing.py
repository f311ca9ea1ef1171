"""Dynamic test discovery: run the project's test suite once with a call tracer and keep, for
every test, the functions it executed. Static discovery finds tests that *name* the function; this
finds the ones that reach it through other code (``test_total`` -> ``total()`` -> ``subtotal()``).

The suite runs in the same sandbox as candidates (a private copy of the project, never the real
one). The map is cached per project and made again when a test file or conftest changes (the issue's
"refreshed when test files change": editing the function itself does not rerun the whole suite).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from budgetpass.generation import models
from budgetpass.generation.locate import find_function

from . import sandbox
from .discovery import iter_python_files, iter_test_files
from .runner import copy_project, pytest_env

TRACE_FILE = "trace.json"
PLUGIN_MODULE = "budgetpass_trace"
# A pytest plugin, loaded with -p in the sandboxed run: a profile hook per test records the
# (file, first line) of every Python function called under the project folder. sys.setprofile
# sees calls only (not lines), so the suite runs at close to its normal speed.
PLUGIN_SOURCE = '''
import json, os, sys, threading
import pytest

ROOT = os.path.realpath(os.getcwd()) + os.sep
CALLS = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    seen = set()

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code.co_filename.startswith(ROOT):
                seen.add((code.co_filename[len(ROOT):], code.co_firstlineno))

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        CALLS[item.nodeid] = sorted(seen)


def pytest_sessionfinish(session):
    with open(os.environ["BUDGETPASS_TRACE_OUT"], "w") as out:
        json.dump(CALLS, out)
'''


class TraceError(RuntimeError):
    """The traced run produced no map; the message says why."""


@dataclass(frozen=True)
class TestTrace:
    """node id -> the (file relative to the project, first line) of each function it called."""

    calls: dict[str, frozenset[tuple[str, int]]]
    key: str
    cached: bool  # read from the cache rather than run now
    seconds: float  # of the traced run (0 when cached)

    def tests_calling(self, rel_file: str, first_lines: set[int]) -> tuple[str, ...]:
        return tuple(node for node, called in self.calls.items()
                     if any((rel_file, line) in called for line in first_lines))


def suite_key(project: Path) -> str:
    """Changes when a test file or a conftest changes (name, size, mtime)."""
    digest = hashlib.sha256()
    files = set(iter_test_files(project)) | {p for p in iter_python_files(project)
                                             if p.name == "conftest.py"}
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path.relative_to(project).as_posix()}\0{stat.st_size}\0"
                      f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_file(project: Path) -> Path:
    name = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:16]
    return models.cache_dir().parent / "traces" / f"{name}.json"


def trace_tests(project: Path, python: str, info: sandbox.SandboxInfo,
                limits: sandbox.Limits, refresh: bool = False,
                run: bool = True) -> TestTrace | None:
    """The project's test -> called-functions map, from the cache when its tests are unchanged.
    ``run`` False: the cached map or None (an inline request never waits on the suite). A traced
    run that failed is remembered too (TraceError again, not a second run) until a test file
    changes."""
    project = Path(project).absolute()
    key = suite_key(project)
    cached = cache_file(project)
    if not refresh and cached.is_file():
        try:
            data = json.loads(cached.read_text())
            if data.get("key") == key:
                if "failed" in data:
                    raise TraceError(f"{data['failed']} (tried before; tried again when a test "
                                     "file changes)")
                return TestTrace(_calls(data["calls"]), key, True, 0.0)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache is made again
    if not run:
        return None
    with tempfile.TemporaryDirectory(prefix="budgetpass-trace-") as tmp:
        work, out = Path(tmp) / "work", Path(tmp) / "out"
        copy_project(project, work)
        out.mkdir()
        (out / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
        for folder in (Path(tmp), work, out):
            os.chmod(folder, 0o755)
        os.chmod(out, 0o777)
        inner_work, inner_out = sandbox.SANDBOX_WORKDIR, sandbox.SANDBOX_OUTDIR
        env = pytest_env(python, home=inner_out,
                       PYTHONPATH=os.pathsep.join([inner_out, inner_work, f"{inner_work}/src"]),
                       BUDGETPASS_TRACE_OUT=f"{inner_out}/{TRACE_FILE}")
        argv = [python, "-m", "pytest", "-q", "-p", PLUGIN_MODULE, "-p", "no:cacheprovider",
                "--rootdir", inner_work]
        result = sandbox.run(argv, work, out, info, limits, env, hide=[str(project)])
        trace_path = out / TRACE_FILE
        if not trace_path.is_file():
            why = (f"timed out after {limits.wall_seconds:g} s" if result.timed_out
                   else f"exit {result.returncode}")
            _store(cached, {"key": key, "failed": f"the traced test run left no map ({why})"})
            raise TraceError(f"the traced test run left no map ({why}): {result.output[-1500:]}")
        raw = json.loads(trace_path.read_text())
    _store(cached, {"key": key, "calls": raw})
    return TestTrace(_calls(raw), key, False, result.seconds)


def _store(cached: Path, data: dict) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    temp = cached.with_suffix(".tmp")
    temp.write_text(json.dumps(data))
    temp.replace(cached)


def _calls(raw: dict) -> dict[str, frozenset[tuple[str, int]]]:
    return {node: frozenset((str(f), int(line)) for f, line in called)
            for node, called in raw.items()}


def function_first_lines(text: str, qualname: str) -> set[int]:
    """The lines a code object of ``qualname`` can start on: its ``def`` line and, when it is
    decorated, its first decorator's line (what ``co_firstlineno`` holds)."""
    site = find_function(text, qualname)
    return site.code_first_lines if site is not None else set()


def traced_tests(project: Path, rel_file: str, text: str, qualname: str, python: str,
                 info: sandbox.SandboxInfo, limits: sandbox.Limits,
                 run: bool = True) -> tuple[TestTrace | None, tuple[str, ...]]:
    """(the trace, node ids of the tests that called ``qualname`` in ``rel_file``); (None, ())
    when ``run`` is False and no map is cached."""
    trace = trace_tests(project, python, info, limits, run=run)
    if trace is None:
        return None, ()
    return trace, trace.tests_calling(rel_file, function_first_lines(text, qualname))
