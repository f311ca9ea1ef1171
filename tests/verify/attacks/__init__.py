"""Hostile function bodies, one file each (``target(n)``, the attack in its body, ``CLASS`` naming
the class of issue 13 it belongs to), and the one harness that checks bodies the way
``budgetpass check PATH::FUNC --bodies FILE`` does: the project's own test discovery, the warm
worker's sandbox and the tests' selection, no model.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from budgetpass.generation.source import locate_function, normalize_body, splice_body
from budgetpass.verify import sandbox
from budgetpass.verify.discovery import find_tests
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.select import TestedCandidate, choose_tested


def check_bodies(project: Path, target: str, bodies: list[str], limits: sandbox.Limits,
                 sandbox_kind: str = "auto", parallel: int = 1) -> dict:
    """Each body (indented as in the function) spliced into ``target`` ("FILE::FUNC", FILE
    relative to ``project``), tested against the tests discovery finds, in one warm worker, in
    order; then the selection. Returns {"status", "selected", "runs", "seconds", "tests"}.

    The seam the lead re-points at ``budgetpass check`` once the job lives in the app layer.
    """
    rel_file, function = target.split("::", 1)
    path = Path(project) / rel_file
    text = path.read_text(encoding="utf-8")
    site = locate_function(text, function, filename=str(path))
    node_ids = find_tests(Path(project), function, target_file=path).node_ids
    start = time.monotonic()
    with WarmWorker(Path(project), sandbox.probe(sandbox_kind), limits, sys.executable,
                    parallel=parallel) as worker:
        worker_pid = worker.proc.pid
        ids = [worker.submit(rel_file, splice_body(text, site, normalize_body(body, site)),
                             node_ids, original=text) for body in bodies]
        runs = dict(worker.results())
        lingering = _descendants(os.getpid())  # every run has ended: none of theirs may be left
    ordered = [runs[i] for i in ids]
    status, choice = choose_tested([TestedCandidate(i, 0.0, len(body), run.n_passed, run.passed)
                                    for i, (body, run) in enumerate(zip(bodies, ordered))])
    return {"status": status, "selected": choice.index if choice else None, "runs": ordered,
            "seconds": time.monotonic() - start, "tests": node_ids,
            "lingering": [p for p in lingering if p[1] != 0 and p[2] != worker_pid]}


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
