"""Run untrusted candidate code: bubblewrap when it works, a limited subprocess when it does not.

Inside bubblewrap the host is read-only, the network and PID namespaces are private, home folders
are hidden behind empty tmpfs mounts, and only the candidate's scratch copy and an output folder
are writable. Resource limits (address space, CPU time, file size, process count) and a wall-clock
timeout that kills the whole process tree apply in both modes.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SANDBOX_WORKDIR = "/tmp/w"
SANDBOX_OUTDIR = "/tmp/out"
UNPRIVILEGED_UID = 65534  # nobody: RLIMIT_NPROC is not enforced for root


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 60.0
    cpu_seconds: int = 60
    memory_bytes: int = 2 << 30
    file_bytes: int = 64 << 20
    processes: int = 128


@dataclass(frozen=True)
class RunResult:
    returncode: int | None
    timed_out: bool
    seconds: float
    output: str  # the tail of stdout+stderr


@dataclass(frozen=True)
class SandboxInfo:
    kind: str  # "bwrap" | "process"
    warning: str | None  # said in every result when the sandbox is weaker than bwrap


@functools.cache
def probe(requested: str = "auto") -> SandboxInfo:
    """Which sandbox works here. ``requested``: auto | bwrap | process."""
    if requested not in ("auto", "bwrap", "process"):
        raise ValueError(f"sandbox must be auto, bwrap or process, not {requested!r}")
    if requested == "process":
        return SandboxInfo("process", "UNSANDBOXED: candidates run as plain subprocesses with "
                                      "resource limits only (sandbox set to 'process')")
    bwrap = shutil.which("bwrap")
    why = "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    if bwrap:
        proc = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "--die-with-parent",
             "true"], capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            return SandboxInfo("bwrap", None)
        why = f"bwrap does not work here ({proc.stderr.strip()[:200]})"
    if requested == "bwrap":
        raise RuntimeError(f"sandbox 'bwrap' was requested but {why}")
    return SandboxInfo("process", f"UNSANDBOXED: {why}; candidates run as plain subprocesses with "
                                  "resource limits only, and can reach your files and network")


def _rlimits(limits: Limits, drop_to_nobody: bool) -> None:
    """Runs in the child between fork and exec."""
    def cap(which: int, value: int) -> None:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    cap(resource.RLIMIT_AS, limits.memory_bytes)
    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    cap(resource.RLIMIT_FSIZE, limits.file_bytes)
    cap(resource.RLIMIT_CORE, 0)
    if drop_to_nobody or os.geteuid() != 0:
        cap(resource.RLIMIT_NPROC, limits.processes)


def _hidden_roots() -> list[str]:
    roots = {"/home", "/root", os.path.expanduser("~")}
    return sorted(r for r in roots if r and os.path.isdir(r) and r != "/")


def _needed_paths(python: str) -> list[str]:
    """Interpreter and library folders the test run needs, re-exposed over hidden mounts."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    exe = Path(python)
    if exe.parent.name == "bin":
        paths.add(str(exe.parent.parent.absolute()))
    resolved = exe.resolve()
    if resolved.parent.name == "bin":
        paths.add(str(resolved.parent.parent))
    return sorted(p for p in paths if os.path.isdir(p))


def _is_under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _bwrap_mounts(python: str, hide: list[str]) -> list[str]:
    """Read-only host, private /dev and /proc, home folders, /tmp and ``hide`` behind empty tmpfs."""
    hidden = sorted(set(_hidden_roots() + ["/tmp"] + hide))
    argv = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev",
            "--proc", "/proc"]
    for root in hidden:
        argv += ["--tmpfs", root]
    made: set[str] = set()
    for path in _needed_paths(python):
        if _is_under(path, hidden):
            # bwrap would create the folders above the mount 0700: unreachable for other uids.
            for parent in reversed(Path(path).parents[:-1]):
                if str(parent) not in made and _is_under(str(parent), hidden) \
                        and str(parent) not in hidden:
                    argv += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            argv += ["--ro-bind", path, path]
    return argv


def bwrap_argv(workdir: Path, outdir: Path, python: str, hide: list[str]) -> list[str]:
    drop = os.geteuid() == 0 and shutil.which("setpriv") is not None
    argv = _bwrap_mounts(python, hide)
    argv += ["--bind", str(workdir), SANDBOX_WORKDIR, "--bind", str(outdir), SANDBOX_OUTDIR,
             "--chdir", SANDBOX_WORKDIR, "--die-with-parent", "--new-session"]
    if drop:
        # No user namespace: inside one only root is mapped and setpriv could not switch to nobody.
        argv += ROOT_NAMESPACES
        argv += ["--", shutil.which("setpriv"), f"--reuid={UNPRIVILEGED_UID}",
                 f"--regid={UNPRIVILEGED_UID}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all"]
    else:
        argv += ["--unshare-all", "--cap-drop", "ALL", "--"]
    return argv


ROOT_NAMESPACES = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                   "--unshare-cgroup-try"]


def bwrap_worker_argv(binds: list[tuple[str, str, bool]], python: str, hide: list[str],
                      chdir: str) -> list[str]:
    """bwrap prefix for the warm worker: ``binds`` are (host path, sandbox path, writable).

    As root (no user namespace) the worker keeps only CAP_SETUID/CAP_SETGID/CAP_KILL, so that it
    can run each candidate under its own unprivileged uid and kill whatever that uid leaves behind.
    """
    argv = _bwrap_mounts(python, hide)
    for source, target, writable in binds:
        argv += ["--bind" if writable else "--ro-bind", source, target]
    argv += ["--chdir", chdir, "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        argv += ROOT_NAMESPACES + ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID",
                                   "--cap-add", "CAP_SETGID", "--cap-add", "CAP_KILL", "--"]
    else:
        argv += ["--unshare-all", "--cap-drop", "ALL", "--"]
    return argv


def run(argv: list[str], workdir: Path, outdir: Path, info: SandboxInfo, limits: Limits,
        env: dict[str, str], hide: list[str] = ()) -> RunResult:
    """Run ``argv`` (whose paths refer to SANDBOX_WORKDIR/SANDBOX_OUTDIR) with ``workdir`` as cwd."""
    log_path = outdir.parent / (outdir.name + ".log")
    drop = False
    if info.kind == "bwrap":
        prefix = bwrap_argv(workdir, outdir, argv[0], list(hide))
        drop = "--reuid" in " ".join(prefix)
        if drop:
            for folder in (workdir, outdir):
                _chown_tree(folder, UNPRIVILEGED_UID)
        full = prefix + argv
        cwd = None
    else:
        mapping = {SANDBOX_WORKDIR: str(workdir), SANDBOX_OUTDIR: str(outdir)}
        full = [_remap(a, mapping) for a in argv]
        env = {k: _remap(v, mapping) for k, v in env.items()}
        cwd = str(workdir)
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            full, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=functools.partial(_rlimits, limits, drop))
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)
    seconds = time.monotonic() - start
    return RunResult(None if timed_out else proc.returncode, timed_out, seconds, _tail(log_path))


def _remap(text: str, mapping: dict[str, str]) -> str:
    for inside, outside in mapping.items():
        text = text.replace(inside, outside)
    return text


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _chown_tree(folder: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        os.chown(dirpath, uid, uid)
        for name in filenames + dirnames:
            try:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
            except OSError:
                pass


def _tail(path: Path, size: int = 4000) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")
