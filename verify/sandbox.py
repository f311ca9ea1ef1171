"""Run untrusted candidate code: bubblewrap when it works, a limited subprocess when it does not.

Inside bubblewrap the host is visible only by allowlist (the system's /usr and its links, the
interpreters' prefixes, the loader cache and time zone of /etc) and read-only; /dev, /proc and /tmp
are private, the network and PID namespaces are new, and only the run's own folders are writable
(for the warm worker: a size-limited tmpfs). Resource limits (address space, CPU time, file size,
process count) and a wall-clock timeout that kills the whole process tree apply in both modes;
``CandidateGroups`` adds memory and process caps over a candidate's whole tree where cgroups are
writable. What holds in which mode: SECURITY.md.
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
    disk_bytes: int = 256 << 20  # all files of one candidate's run (the tmpfs it writes in)


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


def _needed_paths(python: str) -> list[str]:
    """Interpreter and library folders the test run needs (ours and the project's)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    exe = Path(python)
    if exe.parent.name == "bin":
        paths.add(str(exe.parent.parent.absolute()))
    resolved = exe.resolve()
    if resolved.parent.name == "bin":
        paths.add(str(resolved.parent.parent))
    found = sorted(p for p in paths if os.path.isdir(p))
    # A folder inside another one listed is bound with it.
    return [p for p in found if not any(p != q and _is_under(p, [q]) for q in found)]


def _is_under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


# What of /etc a Python run needs: the dynamic loader's cache and the local time zone.
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")
SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def _bwrap_mounts(python: str, hide: list[str] = ()) -> list[str]:
    """Mounts by allowlist: the system's programs and libraries (/usr and its links), the
    interpreters' prefixes, a few files of /etc, private /dev, /proc and /tmp; nothing else of the
    host (no home folders, no sockets in /run or /tmp, no other world-readable files).
    ``hide`` is kept for callers: nothing outside the allowlist is visible anyway."""
    argv = [shutil.which("bwrap") or "bwrap"]
    for tree in SYSTEM_TREES:
        if os.path.islink(tree):
            argv += ["--symlink", os.readlink(tree), tree]
        elif os.path.isdir(tree):
            argv += ["--ro-bind", tree, tree]
    for path in SYSTEM_FILES:
        argv += ["--ro-bind-try", path, path]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    made: set[str] = {"/", "/tmp", *SYSTEM_TREES}
    for path in _needed_paths(python):
        if _is_under(path, list(SYSTEM_TREES)):
            continue
        # bwrap would create the folders above the mount 0700: unreachable for other uids.
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in made:
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


WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE",
               "CAP_FOWNER")
ROOT_NAMESPACES = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                   "--unshare-cgroup-try"]


def bwrap_worker_argv(binds: list[tuple[str, str, bool]], python: str, hide: list[str],
                      chdir: str, scratch: tuple[tuple[str, int], ...] = ()) -> list[str]:
    """bwrap prefix for the warm worker: ``binds`` are (host path, sandbox path, writable);
    ``scratch``: (sandbox path, bytes) of each size-limited tmpfs for the candidates' run folders
    (one per slot, mounted in this order).

    As root (no user namespace) the worker keeps only what it needs to run each candidate under
    its own unprivileged uids (SETUID/SETGID), give them their folders (CHOWN), clean those up
    (DAC_OVERRIDE/FOWNER) and kill whatever the uids leave behind (KILL); the candidates' processes
    lose every capability when they switch uid.
    """
    argv = _bwrap_mounts(python, hide)
    for path, size in scratch:
        argv += ["--perms", "0711", "--size", str(size), "--tmpfs", path]
    for source, target, writable in binds:
        argv += ["--bind" if writable else "--ro-bind", source, target]
    argv += ["--chdir", chdir, "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        argv += ROOT_NAMESPACES + ["--cap-drop", "ALL"]
        for cap in WORKER_CAPS:
            argv += ["--cap-add", cap]
        argv += ["--"]
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


class CandidateGroups:
    """Per-slot cgroups that cap memory and processes for a candidate and everything it starts.

    cgroup v2 where this process may make a child group with the memory and pids controllers;
    else cgroup v1 memory and pids hierarchies where writable (as root); else none, and the limits
    stay per process (RLIMIT_AS) and per uid (RLIMIT_NPROC). ``folders``: one per hierarchy, each
    holding ``slot0``, ``slot1``, ...; the worker's children join their slot by writing to
    ``cgroup.procs`` before they drop root.
    """

    def __init__(self, slots: int, limits: Limits):
        self.folders: list[str] = []
        self.kind = "none"
        name = f"budgetpass-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            self._make_v2(name, slots, limits)
        except OSError:
            self.close()
        if not self.folders:
            try:
                self._make_v1(name, slots, limits)
            except OSError:
                self.close()

    def _make_v2(self, name: str, slots: int, limits: Limits) -> None:
        root = "/sys/fs/cgroup"
        if not os.path.isfile(f"{root}/cgroup.controllers"):
            return
        with open(f"{root}/cgroup.controllers") as handle:
            if not {"memory", "pids"} <= set(handle.read().split()):
                return
        own = f"{root}/{name}"
        os.mkdir(own)
        self.folders.append(own)
        with open(f"{own}/cgroup.subtree_control", "w") as handle:
            handle.write("+memory +pids")
        for slot in range(slots):
            os.mkdir(f"{own}/slot{slot}")
            _write(f"{own}/slot{slot}/memory.max", str(limits.memory_bytes))
            _write(f"{own}/slot{slot}/memory.swap.max", "0", required=False)
            _write(f"{own}/slot{slot}/pids.max", str(limits.processes))
        self.kind = "v2"

    def _make_v1(self, name: str, slots: int, limits: Limits) -> None:
        settings = {"memory": [("memory.limit_in_bytes", limits.memory_bytes),
                               ("memory.memsw.limit_in_bytes", limits.memory_bytes)],
                    "pids": [("pids.max", limits.processes)]}
        for controller, files in settings.items():
            root = f"/sys/fs/cgroup/{controller}"
            if not os.access(root, os.W_OK) or not os.path.isfile(f"{root}/cgroup.procs"):
                self.close()
                return
            own = f"{root}/{name}"
            os.mkdir(own)
            self.folders.append(own)
            for slot in range(slots):
                os.mkdir(f"{own}/slot{slot}")
                for filename, value in files:
                    _write(f"{own}/slot{slot}/{filename}", str(value),
                           required=filename != "memory.memsw.limit_in_bytes")
        self.kind = "v1"

    def close(self) -> None:
        """Remove the groups (their processes are dead by then; a straggler is killed first)."""
        for own in reversed(self.folders):
            for slot in sorted(Path(own).glob("slot*"), reverse=True):
                _kill_members(slot)
                try:
                    slot.rmdir()
                except OSError:
                    pass
            try:
                os.rmdir(own)
            except OSError:
                pass
        self.folders = []
        self.kind = "none"


def _write(path: str, value: str, required: bool = True) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError:
        if required:
            raise


def _kill_members(group: Path) -> None:
    for _ in range(20):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)
