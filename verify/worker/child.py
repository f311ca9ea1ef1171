"""What a forked judge or executor does to itself before it runs anything of the project
(limits, no new privileges, its own uid); and ``send``, one JSON line on a pipe (the judge's
reports, the worker's answers to the host)."""

from __future__ import annotations

import ctypes
import json
import os
import resource


def send(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


def no_new_privileges() -> None:
    """A setuid-root binary must not hand a candidate back the worker's capabilities."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except OSError:
        pass


def not_dumpable() -> None:
    """Nobody of the same uid may ptrace this process or read its /proc/PID/mem and fds."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except OSError:
        pass


def apply_limits(limits: dict) -> None:
    for which, value in ((resource.RLIMIT_AS, limits["memory_bytes"]),
                         (resource.RLIMIT_CPU, limits["cpu_seconds"]),
                         (resource.RLIMIT_FSIZE, limits["file_bytes"]),
                         (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_NPROC, limits["processes"])):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def become(uid: int | None, groups: list[int]) -> None:
    if uid is not None:
        os.setgroups(groups)
        os.setgid(uid)
        os.setuid(uid)
