"""Warm test worker: runs INSIDE the sandbox, imports pytest once, forks one child per candidate.

Standalone on purpose (stdlib + pytest only): it runs under the project's interpreter, which need
not have budgetpass installed, so the host binds this one file into the sandbox.

Protocol. The host writes JSON lines on stdin:
  {"op": "run", "id": N, "file": REL, "text": SOURCE, "tests": [NODE_ID...], "limits": {...},
   "pytest_args": [ARG...]}  (the user's extra options, checked by the host: runner.py)
  {"op": "cancel", "id": N}
and EOF to stop. The worker answers JSON lines on the fd named by --result-fd:
  {"op": "ready", "seconds": S}
  {"op": "result", "id": N, "outcomes": [[NODE_ID, OUTCOME, MESSAGE]...], "exit": ..., ...}

Why the report cannot be forged by the candidate: a candidate child talks to the worker over its
own pipe, and every line must carry a per-run nonce; the worker trusts only a complete sequence
(collected -> per-test results -> done). Exit codes, stdout and files in the work dir are never read
as results. Before each result the child checks that pytest's reporting functions and hook
implementations are the ones it started with. When the worker runs as root inside the sandbox
(bubblewrap without a user namespace), each child switches to its own unprivileged uid before any
project code runs, so it cannot signal the worker or its siblings, and every process it left
behind is killed by uid.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import secrets
import selectors
import shutil
import signal
import sys
import time

FIRST_UID = 60000  # slot s runs as uid FIRST_UID + s when the worker is root
MESSAGE_LIMIT = 4000
OUTPUT_TAIL = 2000
# Built-in plugins that cost time per run and cannot change a test's outcome. The two exception
# plugins run gc.collect() at exit, which walks the whole (forked) heap: ~30 ms each.
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:junitxml", "-p", "no:pastebin",
                 "-p", "no:stepwise", "-p", "no:unraisableexception",
                 "-p", "no:threadexception")


def _send(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


# ---------------------------------------------------------------- inside a candidate's child


class _Reporter:
    """pytest plugin in the child: streams collection, per-test outcomes and 'done' to the worker."""

    def __init__(self, fd: int, nonce: str):
        self.fd, self.nonce = fd, nonce
        self.reports: dict[str, list] = {}
        self.guarded = _guard_snapshot()
        self.hooks = None

    def send(self, message: dict) -> None:
        message["nonce"] = self.nonce
        _send(self.fd, message)

    def check(self, session=None) -> None:
        current = _guard_snapshot()
        changed = [name for name, value in self.guarded.items() if current.get(name) != value]
        if (self.hooks is not None and session is not None
                and _hook_snapshot(session.config) != self.hooks):
            changed.append("pytest hook implementations")
        if changed:
            self.send({"op": "tampered", "what": changed[:5]})
            os._exit(70)

    def pytest_collectreport(self, report):
        if report.failed:
            self.send({"op": "collect_error", "node": report.nodeid,
                       "message": str(report.longrepr)[-MESSAGE_LIMIT:]})

    def pytest_collection_finish(self, session):
        self.hooks = _hook_snapshot(session.config)
        self.session = session
        self.send({"op": "collected", "tests": [item.nodeid for item in session.items]})

    def pytest_runtest_logstart(self, nodeid, location):
        self.send({"op": "start", "node": nodeid})

    def pytest_runtest_logreport(self, report):
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid, location):
        self.check(getattr(self, "session", None))
        reports = self.reports.pop(nodeid, [])
        outcome, message = _outcome(reports)
        self.send({"op": "test", "node": nodeid, "outcome": outcome,
                   "message": message[-MESSAGE_LIMIT:],
                   "seconds": sum(float(r.duration) for r in reports)})

    def pytest_sessionfinish(self, session, exitstatus):
        self.check(session)
        self.send({"op": "done", "exitstatus": int(exitstatus)})


def _guard_snapshot() -> dict:
    """Identity and code of the functions that decide and carry a test's outcome."""
    import _pytest.python
    import _pytest.reports
    import _pytest.runner

    targets = {
        "runner.call_and_report": _pytest.runner.call_and_report,
        "runner.runtestprotocol": _pytest.runner.runtestprotocol,
        "runner.pytest_runtest_makereport": _pytest.runner.pytest_runtest_makereport,
        "runner.CallInfo.from_call": _pytest.runner.CallInfo.from_call,
        "reports.TestReport.from_item_and_call": _pytest.reports.TestReport.from_item_and_call,
        "reports.TestReport.__init__": _pytest.reports.TestReport.__init__,
        "python.pytest_pyfunc_call": _pytest.python.pytest_pyfunc_call,
        "reporter.send": _Reporter.send,
        "reporter.check": _Reporter.check,
        "reporter.logfinish": _Reporter.pytest_runtest_logfinish,
        "outcome": _outcome,
        "send": _send,
        "os.write": os.write,
        "os._exit": os._exit,
    }
    snap = {}
    for name, func in targets.items():
        func = getattr(func, "__func__", func)
        snap[name] = (id(func), id(getattr(func, "__code__", None)))
    return snap


def _hook_snapshot(config) -> tuple:
    hook = config.pluginmanager.hook
    names = ("pytest_runtest_protocol", "pytest_runtest_makereport", "pytest_runtest_call",
             "pytest_pyfunc_call", "pytest_runtest_logreport", "pytest_runtest_logfinish",
             "pytest_report_teststatus", "pytest_sessionfinish")
    return tuple((n, tuple(id(impl.function) for impl in getattr(hook, n).get_hookimpls()))
                 for n in names)


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


def _no_new_privileges() -> None:
    """A setuid-root binary must not hand a candidate back the worker's capabilities."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except OSError:
        pass


def _child(job: dict, slot_uid: int | None, base: str, rundir: str, fd: int) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setsid()
        limits = job["limits"]
        for which, value in ((resource.RLIMIT_AS, limits["memory_bytes"]),
                             (resource.RLIMIT_CPU, limits["cpu_seconds"]),
                             (resource.RLIMIT_FSIZE, limits["file_bytes"]),
                             (resource.RLIMIT_CORE, 0),
                             (resource.RLIMIT_NPROC, limits["processes"])):
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass
        _no_new_privileges()
        if slot_uid is not None:
            os.setgroups([])
            os.setgid(slot_uid)
            os.setuid(slot_uid)
        os.makedirs(rundir)
        work = os.path.join(rundir, "w")
        shutil.copytree(base, work, symlinks=True)
        for rel, text in {**job.get("files", {}), job["file"]: job["text"]}.items():
            with open(os.path.join(work, rel), "w", encoding="utf-8") as handle:
                handle.write(text)
        log = os.open(os.path.join(rundir, "output.log"), os.O_WRONLY | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, fd)
        os.closerange(fd + 1, 65536)
        os.chdir(work)
        os.environ["HOME"] = rundir
        os.environ["TMPDIR"] = rundir
        src = os.path.join(work, "src")
        sys.path[:0] = [work] + ([src] if os.path.isdir(src) else [])
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        for name in [m for m in sys.modules if m.split(".")[0] in _project_modules(work)]:
            del sys.modules[name]  # the candidate's version must be imported, not a warm copy
        import pytest

        doctests = any(not _is_test_file(t.split("::")[0]) for t in job["tests"])
        reporter = _Reporter(fd, job["nonce"])
        pytest.main(["-q", "--tb=line", "--color=no", "--rootdir", work, *QUIET_PLUGINS,
                     *(["--doctest-modules"] if doctests else []),
                     "-W", "ignore::pytest.PytestAssertRewriteWarning",
                     *job.get("pytest_args", []), *job["tests"]],
                    plugins=[reporter])
        code = 0
    except BaseException:  # noqa: BLE001 - anything here is a failed candidate, said in its output
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
    def __init__(self, job, pid, pidfd, reader, slot, rundir, deadline):
        self.job, self.pid, self.pidfd, self.reader = job, pid, pidfd, reader
        self.slot, self.rundir, self.deadline = slot, rundir, deadline
        self.buffer = b""
        self.messages: list[dict] = []
        self.forged = 0
        self.started = time.monotonic()
        self.timed_out = False
        self.cancelled = False


class Worker:
    def __init__(self, base: str, scratch: str, slots: int, result_fd: int):
        self.base, self.scratch, self.result_fd = base, scratch, result_fd
        self.free_slots = list(range(slots))
        self.root = os.geteuid() == 0
        self.queue: list[dict] = []
        self.running: dict[int, _Running] = {}
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
                elif kind == "pipe":
                    if run.reader is not None and run.pid in self.running:
                        self._read_pipe(run)  # (its run may have finished earlier in this batch)
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

    def _start_queued(self) -> None:
        while self.queue and self.free_slots:
            job = self.queue.pop(0)
            slot = self.free_slots.pop(0)
            job["nonce"] = secrets.token_hex(16)
            rundir = os.path.join(self.scratch, f"run-{job['id']}")
            reader, writer = os.pipe()
            uid = FIRST_UID + slot if self.root else None
            pid = os.fork()
            if pid == 0:
                os.close(reader)
                _child(job, uid, self.base, rundir, writer)
            os.close(writer)
            os.set_blocking(reader, False)
            pidfd = os.pidfd_open(pid)
            run = _Running(job, pid, pidfd, reader, slot, rundir,
                           time.monotonic() + job["limits"]["wall_seconds"])
            self.running[pid] = run
            self.selector.register(reader, selectors.EVENT_READ, ("pipe", run))
            self.selector.register(pidfd, selectors.EVENT_READ, ("exit", run))

    def _read_pipe(self, run: _Running) -> None:
        try:
            data = os.read(run.reader, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self.selector.unregister(run.reader)
            os.close(run.reader)
            run.reader = None
            return
        run.buffer += data
        if len(run.buffer) > 8 << 20:  # a flood on the report pipe is an attack, not a report
            run.forged += 1
            run.buffer = b""
            self._kill(run)
            return
        *lines, run.buffer = run.buffer.split(b"\n")
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                run.forged += 1
                continue
            if not isinstance(message, dict) or message.get("nonce") != run.job["nonce"]:
                run.forged += 1
                continue
            run.messages.append(message)

    def _kill(self, run: _Running) -> None:
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(run.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _finish(self, run: _Running) -> None:
        if run.pid not in self.running:
            return
        del self.running[run.pid]
        _, status = os.waitpid(run.pid, 0)
        self.selector.unregister(run.pidfd)
        os.close(run.pidfd)
        if run.reader is not None:
            while True:  # whatever the child wrote before it ended is in the pipe already
                before = len(run.messages) + run.forged
                self._read_pipe(run)
                if run.reader is None or len(run.messages) + run.forged == before:
                    break
            if run.reader is not None:
                self.selector.unregister(run.reader)
                os.close(run.reader)
        seconds = time.monotonic() - run.started
        output = _tail(os.path.join(run.rundir, "output.log"))
        self._clean_slot(run)
        self.free_slots.append(run.slot)
        self.free_slots.sort()
        _send(self.result_fd, _verdict(run, status, seconds, output))

    def _clean_slot(self, run: _Running) -> None:
        """Kill everything the candidate left running (by uid when we can) and delete its copy."""
        if not self.root:
            self._kill(run)
            shutil.rmtree(run.rundir, ignore_errors=True)
            return
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(FIRST_UID + run.slot)
                os.setuid(FIRST_UID + run.slot)
                for _ in range(3):  # a fork bomb may still be forking: sweep until none is left
                    try:
                        os.kill(-1, signal.SIGKILL)
                    except ProcessLookupError:
                        break
                shutil.rmtree(run.rundir, ignore_errors=True)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - OUTPUT_TAIL))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _verdict(run: _Running, status: int, seconds: float, output: str) -> dict:
    """Outcomes from the child's messages; a missing 'done' or a forged line fails the run."""
    wall = run.job["limits"]["wall_seconds"]
    collected: list[str] = []
    final: dict[str, tuple[str, str]] = {}
    test_seconds = 0.0
    current = None
    done = None
    problems: list[str] = []
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
        elif op == "tampered":
            problems.append(f"the candidate tampered with pytest's reporting: {message.get('what')}")
        elif op == "done":
            done = message.get("exitstatus")
    if run.forged:
        problems.append(f"{run.forged} report line(s) without the run's nonce: forged or garbled")
    if os.WIFSIGNALED(status):
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
    passed = (complete and done == 0 and not problems and not run.timed_out and not run.cancelled
              and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
              and any(o[1] == "passed" for o in outcomes)
              and all(o[1] in ("passed", "skipped") for o in outcomes))
    if not complete and not problems and not run.timed_out and not run.cancelled:
        problems.append(f"the test process ended before pytest finished ({exit_text})")
    return {"op": "result", "id": run.job["id"], "passed": bool(passed), "outcomes": outcomes,
            "seconds": seconds, "timed_out": run.timed_out, "cancelled": run.cancelled,
            "returncode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status),
            "problems": problems, "output": output, "test_seconds": test_seconds}


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("--preload", default="")
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
    worker = Worker(args.base, args.scratch, args.slots, args.result_fd)
    worker.root = worker.root and not args.same_uid
    worker.serve()


if __name__ == "__main__":
    main()
