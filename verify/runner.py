"""Run selected pytest node ids against one candidate, in a scratch copy of the project."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import sandbox
from .bytecode import bytecode_tag
from .discovery import SKIP_DIRS
from .worker.verdict import COLLECTION_ERROR, NOT_STARTED

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", ".git")


@dataclass(frozen=True)
class TestOutcome:
    node_id: str
    outcome: str  # passed | failed | error | skipped | timeout
    message: str = ""


@dataclass(frozen=True)
class CandidateRun:
    passed: bool
    outcomes: tuple[TestOutcome, ...]
    seconds: float
    timed_out: bool
    returncode: int | None
    output: str = field(repr=False, default="")
    test_seconds: float = 0.0  # the tests' own time, as pytest measured it
    # Every selected test passed without calling the changed function: they cannot judge it.
    never_called: bool = False

    @property
    def n_passed(self) -> int:
        return sum(o.outcome == "passed" for o in self.outcomes)

    @property
    def setup_failure(self) -> str | None:
        """Why no test ran, when it was the project's test set-up and not the candidate: pytest
        stopped before collecting (a conftest that does not import, a plugin its options need) or
        a test module did not import (a test dependency missing); the judge imports the trusted
        code only, so no candidate could have done better."""
        messages = {o.message for o in self.outcomes}
        if len(messages) != 1 or any(o.outcome != "error" for o in self.outcomes):
            return None
        message = messages.pop()
        if message.startswith(NOT_STARTED):
            return message[len(NOT_STARTED):]
        return message if message.startswith(COLLECTION_ERROR) else None

    def summary(self) -> str:
        if self.timed_out:
            return "timed out"
        failing = [o for o in self.outcomes if o.outcome in ("failed", "error")]
        if self.passed:
            return f"{self.n_passed} passed"
        if self.never_called:
            return f"{self.n_passed} passed without calling the function: not a verdict"
        if failing:
            first = failing[0]
            reason = (first.message.splitlines() or [""])[0][:160]
            return f"{len(failing)} failing, first {first.node_id}: {reason}"
        return f"no test result (exit {self.returncode}): {self.output.strip()[-160:]}"


def find_project_root(path: Path) -> Path:
    for folder in [path.parent, *path.parent.parents]:
        if any((folder / m).exists() for m in PROJECT_MARKERS):
            return folder
    return path.parent


def default_python(project: Path) -> str:
    for candidate in (project / ".venv" / "bin" / "python", project / "venv" / "bin" / "python"):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def copy_project(project: Path, dest: Path, bytecode: str | None = None) -> None:
    """A private copy; version control, venvs and caches are left out, but for the project's own
    bytecode of tag ``bytecode`` (e.g. ``cpython-311``: what the tests' interpreter would read;
    Python checks each file against its source's mtime and size before it uses one)."""
    def ignore(folder, names):
        if bytecode and os.path.basename(folder) == "__pycache__":
            return [n for n in names if not (f".{bytecode}." in n or f".{bytecode}-" in n)]
        return [n for n in names if n in SKIP_DIRS and not (bytecode and n == "__pycache__")]

    shutil.copytree(project, dest, symlinks=True, ignore=ignore)


def start_compiling(base: Path) -> subprocess.Popen:
    """``verify/bytecode.py`` on the project copy, in a process of its own beside the worker's
    start (not waited for: a run that starts before it is done finds less bytecode)."""
    return subprocess.Popen([sys.executable, "-m", "budgetpass.verify.bytecode", str(base)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


WORKER_PACKAGE = Path(__file__).with_name("worker")  # copied whole; run as ``python FOLDER``
WORKER_NAME = "budgetpass_worker"  # the copy's name: its import name inside the sandbox
SANDBOX_BASE = "/tmp/p"  # the project copy, read-only
SANDBOX_RUNS = "/tmp/s"  # one writable folder per candidate
SANDBOX_WORKER_DIR = "/tmp/bp"  # holds only the worker package, read-only
SANDBOX_WORKER = f"{SANDBOX_WORKER_DIR}/{WORKER_NAME}"


# Extra pytest options a user may add (``tests.extraArgs``): ones that narrow or tune the run.
# Anything else is refused, with the reason when it is a known troublemaker: results travel from
# budgetpass's own reporter plugin, the tests are the ones budgetpass selected, and output goes to
# the sandbox's log.
PYTEST_OPTIONS_WITH_VALUE = ("-k", "-m", "-W", "--pythonwarnings", "--deselect", "--maxfail",
                             "--tb", "--import-mode", "--capture", "-r")
PYTEST_FLAGS = ("-x", "--exitfirst", "-v", "--verbose", "-q", "--quiet", "-s", "-l",
                "--showlocals", "--strict-markers", "--runxfail", "--disable-warnings")
_REFUSED = (
    (("--junitxml", "--junit-xml", "--junitprefix", "--json-report", "--json-report-file",
      "--report-log", "--result-log", "--resultlog", "--html", "--md-report"),
     "it writes results elsewhere; budgetpass reads each test's outcome from its own reporter"),
    (("-p",), ("it loads or unloads pytest plugins, and budgetpass's reporter and the plugin "
               "set the worker warmed up depend on them")),
    (("-c", "--config-file", "--inifile", "--rootdir", "--confcutdir", "-o", "--override-ini",
      "--basetemp", "--cache-clear", "--noconftest"),
     "it changes which configuration or folders pytest uses inside the sandbox"),
    (("--pyargs", "--ignore", "--ignore-glob", "--deselect-glob", "--doctest-modules",
      "--doctest-glob", "--lf", "--last-failed", "--ff", "--failed-first", "--sw", "--stepwise",
      "--nf", "--new-first"),
     "it selects other files or tests; budgetpass runs the tests that reference the function"),
    (("-n", "--numprocesses", "--dist", "--looponfail", "-f"),
     ("it runs tests in other processes that bypass budgetpass's reporter (budgetpass already "
      "tests candidates in parallel)")),
    (("--collect-only", "--co", "--setup-only", "--setup-plan", "--fixtures", "--markers",
      "-h", "--help", "--version", "-V"), "then no test runs, so nothing could pass"),
)


def check_pytest_args(args) -> tuple[str, ...]:
    """``args`` if every one is an option budgetpass may pass to pytest; else ValueError saying
    which and why (e.g. ``--junitxml``, ``-p no:...``, a path or node id)."""
    args = tuple(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if not isinstance(arg, str) or not arg:
            raise ValueError(f"{arg!r}: expected a non-empty string")
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if not arg.startswith("-"):
            raise ValueError(f"{arg!r} is not an option: a path or test id would select other "
                             "tests; budgetpass runs the tests that reference the function "
                             "(narrow them with -k or -m)")
        for names, why in _REFUSED:
            if name in names or arg in names:
                raise ValueError(f"{arg!r} is refused: {why}")
        if name in PYTEST_OPTIONS_WITH_VALUE:
            glued = "=" in arg if arg.startswith("--") else len(arg) > 2
            if not glued:
                if i + 1 >= len(args):
                    raise ValueError(f"{arg!r} needs a value after it")
                i += 1
        elif arg not in PYTEST_FLAGS and not (len(arg) > 1 and arg[1] != "-"
                                              and set(arg[1:]) <= set("xvqsl")):
            raise ValueError(f"{arg!r} is not one of the pytest options budgetpass passes on: "
                             f"{', '.join(PYTEST_OPTIONS_WITH_VALUE + PYTEST_FLAGS)}")
        i += 1
    return args


def pytest_env(python: str, home: str, **extra: str) -> dict[str, str]:
    """The whole environment of a sandboxed pytest run: nothing of ours leaks in (PYTEST_ADDOPTS
    emptied, no bytecode written into the project copy)."""
    return {"PATH": os.pathsep.join([str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": home, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_ADDOPTS": "",
            **extra}


class WorkerError(RuntimeError):
    """The warm worker could not start; the message says why."""


def _run_from(result: dict) -> CandidateRun:
    outcomes = tuple(TestOutcome(node, outcome, message)
                     for node, outcome, message in result["outcomes"])
    output = "\n".join(result.get("problems", []) + [result.get("output", "")]).strip()
    return CandidateRun(bool(result["passed"]), outcomes, float(result["seconds"]),
                        bool(result["timed_out"]), result.get("returncode"), output,
                        test_seconds=float(result.get("test_seconds", 0.0)),
                        never_called=bool(result.get("never_called")))


class WarmWorker:
    """One sandbox per project whose worker has imported pytest once and forks per candidate.

    The project is copied once (version control, venvs and caches left out); each candidate's child
    copies that into its own scratch folder, writes the candidate's file and runs pytest in-process,
    under rlimits and a wall timeout that kills it. ``parallel`` children run at once.
    """

    def __init__(self, project: Path, info: sandbox.SandboxInfo, limits: sandbox.Limits,
                 python: str | None = None, parallel: int | None = None, warm: bool = True,
                 preload: tuple[str, ...] = (), pytest_args: tuple[str, ...] = ()):
        self.project = Path(project).absolute()
        self.info, self.limits = info, limits
        self.python = python or default_python(self.project)
        self.parallel = max(1, parallel or os.cpu_count() or 1)
        self.warm, self.preload = warm, preload
        self.pytest_args = check_pytest_args(pytest_args)
        self.proc: subprocess.Popen | None = None
        self.ready_seconds = 0.0
        self._next_id = 0
        self._pending: set[int] = set()
        self._buffer = b""
        self._dead = False  # the worker's result pipe reached EOF

    def __enter__(self) -> WarmWorker:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="budgetpass-worker-"))
        base, runs = self._tmp / "base", self._tmp / "runs"
        bytecode = bytecode_tag(self.python) if self.warm else None
        copy_project(self.project, base, bytecode)
        _open_for_reading(base)
        self._compiler = start_compiling(base) if bytecode else None
        # Run as a copy, alone in its folder: beside its source, ``select.py`` of this package
        # would shadow the stdlib.
        worker_dir = self._tmp / "bp"
        worker = worker_dir / WORKER_NAME
        shutil.copytree(WORKER_PACKAGE, worker, ignore=shutil.ignore_patterns("__pycache__"))
        os.chmod(self._tmp, 0o755)
        for folder in (worker_dir, worker):
            os.chmod(folder, 0o755)
        for module in worker.iterdir():
            os.chmod(module, 0o644)
        bwrap = self.info.kind == "bwrap"
        if not bwrap:
            runs.mkdir(mode=0o711)  # the worker makes each run's folder, with a fresh random name
        paths = (SANDBOX_BASE, SANDBOX_RUNS, SANDBOX_WORKER) if bwrap else (
            str(base), str(runs), str(worker))
        same_uid = not bwrap and not _others_can_reach(self.python, self._tmp)
        # cgroups only where the worker switches candidates to their own uids (root)
        self.groups = sandbox.CandidateGroups(self.parallel, self.limits) \
            if os.geteuid() == 0 and not same_uid else None
        folders = self.groups.folders if self.groups else []
        inner_groups = [f"/tmp/cg/{i}" for i in range(len(folders))] if bwrap else folders
        reader, writer = os.pipe()
        argv = [self.python, paths[2], "--base", paths[0], "--scratch", paths[1],
                "--slots", str(self.parallel), "--result-fd", str(writer),
                "--preload", ",".join(self.preload), "--cgroups", ",".join(inner_groups)]
        if not self.warm:
            argv.append("--cold")
        if same_uid:
            # A switch to another uid would lose the interpreter (e.g. a pyenv under /root).
            argv.append("--same-uid")
        if bwrap:
            binds = [(str(base), SANDBOX_BASE, False),
                     (str(worker_dir), SANDBOX_WORKER_DIR, False)]
            binds += [(folder, inner, True) for folder, inner in zip(folders, inner_groups)]
            # A tmpfs per slot (the worker puts each run's folder in its slot's): a candidate's
            # files, its project copy included, never use another slot's share.
            # (twice the copy where its bytecode is still being made: room for the bytecode)
            disk = self.limits.disk_bytes + _tree_bytes(base) * (2 if bytecode else 1)
            scratch = ((SANDBOX_RUNS, 1 << 20),
                       *((f"{SANDBOX_RUNS}/slot{i}", disk) for i in range(self.parallel)))
            argv = sandbox.bwrap_worker_argv(binds, self.python, [str(self.project)],
                                             "/tmp", scratch=scratch) + argv
        env = pytest_env(self.python, home=paths[1], PYTHONHASHSEED="0")
        self._log = open(self._tmp / "worker.log", "wb")  # noqa: SIM115 - open while it runs
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._log,
                                         stderr=subprocess.STDOUT, env=env, pass_fds=(writer,),
                                         start_new_session=True)
        finally:
            os.close(writer)
        self._reader = reader
        ready = self._message(timeout=120)
        if ready is None or ready.get("op") != "ready":
            why = self._log_tail().strip() or "it exited without a word"  # close() removes the log
            self.close()
            raise WorkerError(f"the test worker did not start: {why}")
        self.ready_seconds = ready["seconds"]

    def _log_tail(self) -> str:
        try:
            return (self._tmp / "worker.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def _message(self, timeout: float | None) -> dict | None:
        """The worker's next line; None if it died (EOF) or ``timeout`` passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._reader], [], [], left)
            if not ready:
                return None
            data = os.read(self._reader, 1 << 20)
            if not data:
                self._dead = True
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _write(self, message: dict) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def submit(self, rel_file: str, text: str, node_ids: tuple[str, ...],
               extra_files: dict[str, str] | None = None, original: str | None = None) -> int:
        """Queue one candidate (its version of ``rel_file``, plus trusted files to add); returns
        its id. ``original``: the trusted text of ``rel_file`` the candidate was made from (e.g.
        an editor's unsaved buffer; default: the file as the project holds it). Only function
        bodies may differ from it: those functions run in the candidate's separate process."""
        run_id = self._next_id
        self._next_id += 1
        limits = {name: getattr(self.limits, name) for name in
                  ("wall_seconds", "cpu_seconds", "memory_bytes", "file_bytes", "processes")}
        self._write({"op": "run", "id": run_id, "file": rel_file, "text": text,
                     "original": original, "tests": list(node_ids), "limits": limits,
                     "files": extra_files or {}, "pytest_args": list(self.pytest_args)})
        self._pending.add(run_id)
        return run_id

    def cancel(self, run_id: int) -> None:
        if run_id in self._pending:
            self._write({"op": "cancel", "id": run_id})

    def next_result(self, timeout: float | None) -> tuple[int, CandidateRun] | None:
        """The next submitted candidate to finish, or None if none did within ``timeout`` (or
        none is pending); lets a caller interleave results with submitting more candidates."""
        while self._pending:
            if self._dead:
                run_id = min(self._pending)
                self._pending.discard(run_id)
                reason = f"the test worker died: {self._log_tail()[-300:]}"
                return run_id, CandidateRun(False, (), 0.0, False, None, reason)
            message = self._message(timeout)
            if message is None:
                if self._dead:
                    continue
                return None
            if message.get("op") == "result" and message["id"] in self._pending:
                self._pending.discard(message["id"])
                return message["id"], _run_from(message)
        return None

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None
            os.close(self._reader)
            self._log.close()
        if getattr(self, "groups", None) is not None:
            self.groups.close()
            self.groups = None
        if getattr(self, "_compiler", None) is not None:
            self._compiler.kill()
            self._compiler.wait()
            self._compiler = None
        shutil.rmtree(self._tmp, ignore_errors=True)


def _others_can_reach(python: str, scratch: Path) -> bool:
    """Whether an unprivileged uid can traverse to the interpreter, its prefixes and our scratch."""
    paths = {Path(python).absolute(), Path(python).resolve(), scratch}
    for path in paths:
        for folder in [path, *path.parents]:
            try:
                if folder.is_dir() and not os.stat(folder).st_mode & 0o001:
                    return False
            except OSError:
                return False
    return True


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _open_for_reading(folder: Path) -> None:
    """Candidates run under other uids: they must be able to read (only read) the project copy."""
    for dirpath, dirnames, filenames in os.walk(folder):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o555)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)

