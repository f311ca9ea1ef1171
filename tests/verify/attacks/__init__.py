"""Hostile function bodies, one file each (``target(n)``, the attack in its body, ``CLASS`` naming
the class of issue 13 it belongs to), and the one harness that checks bodies through
``budgetpass check PATH::FUNC --bodies FILE --json``: the app layer's discovery, sandbox, testing,
selection and report, no model.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

from budgetpass.server.cli import main


def check_bodies(project: Path, target: str, bodies: list[str], flags: list[str]) -> dict:
    """``budgetpass check`` of ``bodies`` (indented as in the function) for ``target``
    ("FILE::FUNC", FILE relative to ``project``), with ``flags`` (sandbox, limits), in this process
    so that what its run left behind can be seen. Returns its JSON report plus "exit" (the exit
    code), "seconds" and "lingering": (pid, uid, parent) of processes below this one, other than
    root's, still there after it returned."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        handle.writelines(json.dumps({"body": body}) + "\n" for body in bodies)
    out = io.StringIO()
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(out):
            code = main(["check", f"{project}/{target}", "--bodies", handle.name, "--json",
                         "--project", str(project), *flags])
    finally:
        os.unlink(handle.name)
    seconds = time.monotonic() - start
    report = json.loads(out.getvalue()) if out.getvalue().strip() else {}
    return {**report, "exit": code, "seconds": seconds,
            "lingering": [p for p in _descendants(os.getpid()) if p[1] != 0]}


def _descendants(root: int) -> list[tuple[int, int, int]]:
    """(pid, uid, parent) of every process below ``root``: the worker, bwrap and, if any are
    left, the candidates' processes (any uid other than root's)."""
    parents, uids = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        uids[int(entry)] = int(next(line for line in status.splitlines()
                                    if line.startswith("Uid:")).split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid:
                found.append((child, uids[child], parent))
                frontier.append(child)
    return found
