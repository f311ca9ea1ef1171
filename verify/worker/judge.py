"""The judge: a forked child, not dumpable, that runs pytest on the project's trusted tests
against the trusted module (changed functions forwarded to the executor) and streams each
test's outcome to the worker. It alone holds the result pipe."""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import signal
import socket
import sys

from .child import apply_limits, become, no_new_privileges, not_dumpable, send
from .codec import SafeCodec
from .judge_link import JudgeLink
from .limits import MESSAGE_LIMIT
from .source import is_test_file, judge_source, project_modules
from .verdict import explained, why_pytest_stopped

# Built-in plugins that cost time per run and cannot change a test's outcome. The two exception
# plugins run gc.collect() at exit, which walks the whole (forked) heap: ~30 ms each.
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:junitxml", "-p", "no:pastebin",
                 "-p", "no:stepwise", "-p", "no:unraisableexception",
                 "-p", "no:threadexception")
INI_FILES = (("pytest.ini", None), (".pytest.ini", None), ("pyproject.toml", "[tool.pytest"),
             ("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]"))


class _Said:
    """The first bytes the judge wrote to its stdout and stderr, in order."""

    LIMIT = 1 << 16

    def __init__(self):
        self.parts: list[str] = []
        self.room = self.LIMIT

    def keep(self, text) -> None:
        if self.room > 0 and isinstance(text, str):
            self.parts.append(text[:self.room])
            self.room -= len(self.parts[-1])

    def text(self) -> str:
        return "".join(self.parts)


class _Recorded:
    """The judge's sys.stdout / sys.stderr: written through, and their first bytes kept, so that
    why pytest stopped is read from the judge's own words, not from the output the executor
    shares (where a candidate could write any)."""

    def __init__(self, stream, said: _Said):
        self._stream, self._said = stream, said

    def write(self, text):
        self._said.keep(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Reporter:
    """pytest plugin in the judge: streams collection, per-test outcomes and 'done' to the worker."""

    def __init__(self, fd: int, link: JudgeLink | None, work: str):
        self.fd, self.link = fd, link
        self.work = work + os.sep  # the copy's folder: left out of messages
        self.reports: dict[str, list] = {}
        self.calls_before = 0
        self.collected = False

    def pytest_collectreport(self, report):
        if report.failed:
            message = str(report.longrepr).replace(self.work, "")
            said = explained(message)
            if said:  # the first line says where, the last E line why: both come first
                head = message.strip().splitlines()[0]
                where = "" if head.startswith("E ") else f"{head.rstrip('.')}: "
                message = f"{where}{said[-1]}\n{message}"
            send(self.fd, {"op": "collect_error", "node": report.nodeid,
                            "message": message[-MESSAGE_LIMIT:]})

    def pytest_collection_finish(self, session):
        self.collected = True
        send(self.fd, {"op": "collected", "tests": [item.nodeid for item in session.items]})

    def pytest_runtest_logstart(self, nodeid, location):
        self.calls_before = self.link.calls if self.link else 0
        send(self.fd, {"op": "start", "node": nodeid})

    def pytest_runtest_logreport(self, report):
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid, location):
        reports = self.reports.pop(nodeid, [])
        outcome, message = _outcome(reports)
        called = self.link is not None and self.link.calls > self.calls_before
        if outcome == "skipped" and called and any(r.when == "call" and r.skipped
                                                   and not hasattr(r, "wasxfail") for r in reports):
            outcome, message = "failed", "skipped after the function under test was called"
        send(self.fd, {"op": "test", "node": nodeid, "outcome": outcome,
                        "message": message.replace(self.work, "")[-MESSAGE_LIMIT:],
                        "seconds": sum(float(r.duration) for r in reports)})

    def pytest_sessionfinish(self, session, exitstatus):
        # calls: how often the tests called the changed functions (None: nothing forwarded)
        send(self.fd, {"op": "done", "exitstatus": int(exitstatus),
                        "calls": self.link.calls if self.link else None})


def _outcome(reports) -> tuple[str, str]:
    """passed | failed | error | skipped, and the failing assertion's message."""
    outcome, message = "passed" if reports else "error", "" if reports else "no report"
    for report in reports:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            text = getattr(crash, "message", None) or ""
            if not text or text.startswith("file "):  # e.g. a fixture not found: said in the E lines
                said = explained(str(report.longrepr))
                text = said[0] if said else str(report.longrepr)
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


def _being_compiled(folder: str, names: list[str]) -> list[str]:
    """Bytecode files still being written (the host compiles the copy beside the first runs: each
    file is written under a temporary name, then renamed): not copied, as they may vanish."""
    if os.path.basename(folder) != "__pycache__":
        return []
    return [n for n in names if not n.endswith(".pyc")]


def _forget_bytecode(path: str) -> None:
    """Delete the copy's bytecode of a file the judge rewrote (Python's and pytest's): it would be
    used if the new text had the old one's size and mtime second, i.e. the old code would run."""
    folder, name = os.path.split(path)
    cache = os.path.join(folder, "__pycache__")
    stem = name[:-3] + "."
    try:
        stale = [n for n in os.listdir(cache) if n.startswith(stem)]
    except OSError:
        return
    for entry in stale:
        try:
            os.unlink(os.path.join(cache, entry))
        except OSError:
            pass


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


def run_judge(job: dict, uid, groups, base: str, rundir: str, sock_fd: int | None,
           result_fd: int, out_fd: int) -> None:
    """Forked child: pytest on the trusted tests and module; never returns."""
    code = 1
    said = _Said()
    try:
        os.setsid()
        # A write to a link the executor closed must raise (the calls fail, with why), not kill
        # the judge with no word (the worker itself keeps SIGPIPE's default).
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        apply_limits(job["limits"])
        no_new_privileges()
        become(uid, groups)
        not_dumpable()
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
        shutil.copytree(base, work, symlinks=True, ignore=_being_compiled)
        os.mkdir(tmp, 0o750)
        trusted = job["original"]
        files = dict(job.get("files", {}))
        files[job["file"]] = judge_source(trusted, job["forward"]) if sock_fd is not None \
            else job["text"]
        for rel, text in files.items():
            path = os.path.join(work, rel)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            _forget_bytecode(path)
        os.chdir(work)
        os.environ.update(HOME=tmp, TMPDIR=tmp)
        src = os.path.join(work, "src")
        sys.path[:0] = [work] + ([src] if os.path.isdir(src) else [])
        sys.stdout = _Recorded(os.fdopen(1, "w", buffering=1), said)
        sys.stderr = _Recorded(os.fdopen(2, "w", buffering=1), said)
        project = project_modules(work)
        for name in [m for m in sys.modules if m.split(".")[0] in project]:
            del sys.modules[name]  # the judge's version must be imported, not a warm copy
        link = None
        if sock_fd is not None:
            link = JudgeLink(socket.socket(fileno=sock_fd), SafeCodec(project))
            builtins.__budgetpass_forward__ = link.forward
        _shared_tmp(uid is not None)
        os.umask(0o007)  # files the tests make: shared with the executor through its group
        import pytest

        doctests = any(not is_test_file(t.split("::")[0]) for t in job["tests"])
        reporter = _Reporter(result_fd, link, work)
        pytest.main(["-q", "--tb=line", "--color=no", "--rootdir", work, "--confcutdir", work,
                     *_ini_args(work), "--basetemp", os.path.join(tmp, "pytest"), *QUIET_PLUGINS,
                     *(["--doctest-modules"] if doctests else []),
                     "-W", "ignore::pytest.PytestAssertRewriteWarning",
                     *job.get("pytest_args", []), *job["tests"]],
                    plugins=[reporter])
        if not reporter.collected:  # a usage error, a conftest that does not import
            send(result_fd, {"op": "stopped", "said": why_pytest_stopped(said.text(), work)})
        code = 0
    except BaseException as exc:  # noqa: BLE001 - anything here fails the run, said in its output
        import traceback

        traceback.print_exc()
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        with contextlib.suppress(OSError):  # the pipe may be gone; the exit code still says
            send(result_fd, {"op": "failed", "error": last[:300]})
    finally:
        os._exit(code)
