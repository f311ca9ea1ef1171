"""The worker's start: import pytest and the tests' dependencies once (the warm heap every run
forks from), say ready, then serve runs until stdin ends."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from .child import send
from .scheduler import Worker
from .source import project_modules


def _warm_up(preload: list[str], project: set[str]) -> None:
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
        if name in project:
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
        _warm_up([m for m in args.preload.split(",") if m], project_modules(args.base))
        import gc

        gc.freeze()  # children's collections skip the warm heap (and keep its pages shared)
    send(args.result_fd, {"op": "ready", "seconds": time.monotonic() - start,
                           "root": os.geteuid() == 0})
    worker = Worker(args.base, args.scratch, args.slots, args.result_fd, args.cgroups)
    worker.root = worker.root and not args.same_uid
    worker.serve()
