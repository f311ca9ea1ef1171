"""Warm test workers kept between requests, so inline verification does not start a sandbox (and a
copy of the project) per keystroke.

A worker holds a copy of the project taken when it started: it is dropped when a Python file of
the project changes on disk (mtimes; the file being edited is sent with every candidate, so
unsaved edits need nothing). One request uses a worker at a time: ``borrow`` takes it out of the
cache and ``give_back`` returns it; a second request for the same key meanwhile starts its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from budgetpass.verify.discovery import iter_python_files
from budgetpass.verify.runner import WarmWorker, WorkerError
from budgetpass.verify.sandbox import Limits, SandboxInfo

from .report import SolveError

KEEP = 2  # projects whose worker stays warm


@dataclass(frozen=True)
class WorkerKey:
    project: Path
    python: str
    sandbox: str
    limits: Limits
    extra_args: tuple[str, ...]
    parallel: int | None
    preload: tuple[str, ...]


def _stamp(project: Path) -> tuple:
    """What the worker's copy depends on: every Python file's path and mtime."""
    stamps = []
    for path in iter_python_files(project):
        try:
            stamps.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(stamps)


def start_worker(key: WorkerKey, info: SandboxInfo) -> WarmWorker:
    """A started worker, or SolveError saying how to fix what stopped it."""
    worker = WarmWorker(key.project, info, key.limits, key.python, key.parallel,
                        preload=key.preload, pytest_args=key.extra_args)
    try:
        worker.start()
    except WorkerError as exc:
        raise SolveError(f"{exc}; try sandbox 'process' if bubblewrap is broken here") from None
    return worker


class WorkerCache:
    """Started workers by ``WorkerKey``; ``close`` on shutdown."""

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._idle: OrderedDict[WorkerKey, tuple[WarmWorker, tuple]] = OrderedDict()
        self._lock = threading.Lock()
        self._lent: dict[int, tuple] = {}  # id of a borrowed worker -> its project's stamp
        self.started = 0  # workers started (a bench reads it: reuse means it stays at 1)

    def borrow(self, key: WorkerKey, info: SandboxInfo) -> WarmWorker:
        """The warm worker for ``key`` if its project copy is current, else a new one."""
        stamp = _stamp(key.project)
        with self._lock:
            held = self._idle.pop(key, None)
        if held is not None:
            worker, was = held
            if was == stamp and worker.proc is not None and worker.proc.poll() is None:
                self._lent[id(worker)] = stamp
                return worker
            worker.close()
        worker = start_worker(key, info)
        with self._lock:
            self.started += 1
            self._lent[id(worker)] = stamp
        return worker

    def give_back(self, key: WorkerKey, worker: WarmWorker) -> None:
        with self._lock:
            old = self._idle.pop(key, None)
            self._idle[key] = (worker, self._lent.pop(id(worker), ()))
            evicted = [old[0]] if old else []
            while len(self._idle) > self.keep:
                evicted.append(self._idle.popitem(last=False)[1][0])
        for stale in evicted:
            stale.close()

    def close(self) -> None:
        with self._lock:
            held = [worker for worker, _ in self._idle.values()]
            self._idle.clear()
        for worker in held:
            worker.close()
