"""Issue 12's measured-time protocol: the product's real job for the small model under a deadline
equal to the measured wall time of the reference model's job, task by task.

For each task a throwaway project holds the task's prompt as ``solution.py`` (the entry point's
body a stub) and its hidden test as the project's own tests (``test_solution.py``, ``check`` on
the entry point), found by the product's discovery like any user's. For each budget b, interleaved
so that machine noise hits both sides alike:

- the reference model's job: b samples in one batch (``budget.metric samples``), tested as they
  are decoded, stopping at the first pass; its wall time T is measured;
- the small model's job: the product's default for a generate-until-pass (FLOPs-matched k per
  batch, ``budget.anytime`` with T seconds of sampling, pipelined testing, repair rounds on, the
  runaway cut on), and no test starts after T;
- with ``--ablations``, the small side again with repair rounds off, then with the runaway cut off.

"Solved": a candidate passed, at or before T for the small side (the reference side's own time is
T). Time to first pass: when the first passing candidate's test run ended, since the job began.
A warm-up check with no model starts the project's test worker first, so neither side pays it, and
each job starts with its model's prompt cache empty, so no side inherits another's evaluated
prompt (the small sides share one model and, with one seed, one prompt).

The whole suite takes hours on a 2-core CPU, so a run resumes: each finished task's row is kept in
the bench cache (both sides of a task are measured together, so rows from different sittings stay
comparable), and tasks run in a seeded shuffle, so the tasks done when a run stops
(``--stop-after-minutes``, or killed) are a uniform random sample of the suite, written as such.

    .venv/bin/budgetpass bench reallocation --protocol measured-time [--limit N] [--ablations]
        [--stop-after-minutes M]
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from budgetpass.app.config import build
from budgetpass.app.report import SolveError
from budgetpass.app.solve import GivenBodies, Request, solve
from budgetpass.app.workers import WorkerCache
from budgetpass.generation import models
from budgetpass.generation.backends import open_model

from .tasks import Task

TEST_FILE = """from solution import {entry_point}

{test}


def test_{entry_point}():
    check({entry_point})
"""
STUB = "    raise NotImplementedError\n"
ABLATIONS = {"small_no_repair": {"budget.repair_share": 0},
             "small_no_runaway": {"sampling.runaway": False}}
# Bump when a change to the protocol makes the cached task rows incomparable with new ones.
PROTOCOL_VERSION = 1


def task_project(task: Task, root: Path) -> Path | None:
    """The task as a user's project; None when its prompt is not a function to fill."""
    if task.site() is None:
        return None
    project = root / re.sub(r"\W+", "_", task.task_id)
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'task'\n")
    (project / "solution.py").write_text(task.program(STUB), encoding="utf-8")
    (project / "test_solution.py").write_text(
        TEST_FILE.format(entry_point=task.entry_point, test=task.test), encoding="utf-8")
    return project


def run_job(project: Path, task: Task, settings: dict, workers: WorkerCache,
            deadline_seconds: float | None = None) -> dict:
    """One job through ``solve``; what the protocol scores of it. The model's prompt cache is
    emptied first: a side must not start with the prompt a previous side evaluated."""
    # The paper's protocol: the task's tests pick the answer, the model never sees them (HumanEval's
    # hidden tests in the prompt would be the answer key).
    config = build({**settings, "prompt.show_tests": False})
    getattr(open_model(config.model.spec).backend, "reset", lambda: None)()
    start = time.monotonic()
    deadline = start + deadline_seconds if deadline_seconds is not None else None
    try:
        report = solve(Request(project / "solution.py", task.entry_point, deadline=deadline),
                       config, workers=workers)
    except SolveError as exc:
        return {"status": "error", "error": str(exc), "seconds": time.monotonic() - start,
                "first_pass": None, "samples": 0, "repairs": 0, "tests": 0}
    seconds = time.monotonic() - start
    passes = [c.test_ended_at for c in report.candidates
              if c.run is not None and c.run.passed and c.test_ended_at is not None]
    return {"status": report.status, "seconds": round(seconds, 3),
            "first_pass": round(min(passes), 3) if passes else None,
            "samples": len(report.candidates), "batches": report.batches,
            "repairs": sum(c.repair_of is not None for c in report.candidates),
            "tests": len(report.tests)}


def side_settings(config, b: int, side: str, seconds: float | None = None) -> dict:
    common = {"sampling.temperature": config.temperature, "sampling.top_p": config.top_p,
              "sampling.max_tokens": config.max_tokens, "sampling.seed": config.seed,
              "tests.sandbox": config.sandbox, "tests.timeout_seconds": config.test_timeout,
              "model.threads": config.threads}
    if side == "large":
        return {**common, "model.name": config.large, "budget.metric": "samples",
                "budget.samples": b}
    return {**common, "model.name": config.small, "budget.metric": "flops",
            "budget.reference": config.large, "budget.calls": b, "budget.anytime": True,
            "budget.seconds": seconds, **ABLATIONS.get(side, {})}


def solved(row: dict, deadline: float) -> bool:
    return row["first_pass"] is not None and row["first_pass"] <= deadline


def run_order(tasks: list[Task], seed: int) -> list[Task]:
    """The order tasks are measured in: a seeded shuffle, so that any prefix of it (a run
    stopped early) is a uniform random sample of the suite, not its first, easiest tasks."""
    order = list(tasks)
    random.Random(f"measured-time:{seed}").shuffle(order)
    return order


def conditions(config, sides: tuple[str, ...]) -> dict:
    """What a task row is measured under, besides the task (the models by content, read once)."""
    def sha(name):
        try:
            return models.resolve(name).sha256
        except models.ModelError:
            return name
    return {"protocol": PROTOCOL_VERSION, "small": sha(config.small), "large": sha(config.large),
            "budgets": list(config.budgets), "sides": list(sides),
            "sampling": [config.temperature, config.top_p, config.max_tokens, config.seed],
            "sandbox": config.sandbox, "test_timeout": config.test_timeout,
            "threads": config.threads}


def row_key(measured_under: dict, task: Task) -> str:
    """The same key, the same measurement: a cached row is reused only under its conditions."""
    data = {**measured_under, "task": task.task_id, "task_digest": task.digest}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def measure_task(config, task: Task, sides: tuple[str, ...], scratch: Path) -> dict:
    """Both sides of one task, interleaved budget by budget."""
    project = task_project(task, scratch)
    if project is None:
        return {"task_id": task.task_id, "skipped": "not a function to fill"}
    workers = WorkerCache()
    try:
        solve(Request(project / "solution.py", task.entry_point),  # the warm-up
              build({"tests.sandbox": config.sandbox}), workers=workers,
              source=GivenBodies([STUB]))
        row = {"task_id": task.task_id, "budgets": {}}
        for b in config.budgets:
            large = run_job(project, task, side_settings(config, b, "large"), workers)
            deadline = large["seconds"]
            row["budgets"][str(b)] = {"deadline": deadline, "large": large, **{
                side: run_job(project, task, side_settings(config, b, side, deadline),
                              workers, deadline) for side in sides}}
    finally:
        workers.close()
    return row


def run_measured_time(config, tasks: list[Task], ablations: bool, progress=None,
                      cache=None, stop_at: float | None = None) -> dict:
    """Measure every task the cache lacks, in run order, until ``stop_at`` (monotonic seconds)
    passes between two tasks; the result says whether the suite is complete."""
    sides = ("small",) + (tuple(ABLATIONS) if ablations else ())
    done: dict[str, dict] = {}
    measured = 0
    order = run_order(tasks, config.seed)
    measured_under = conditions(config, sides)
    with tempfile.TemporaryDirectory(prefix="budgetpass-time-solve-") as scratch:
        for number, task in enumerate(order, 1):
            key = row_key(measured_under, task)
            row = cache.get("time_solve", key) if cache is not None else None
            if row is None:
                if stop_at is not None and time.monotonic() >= stop_at:
                    continue  # (rows a later sitting measured still count)
                row = measure_task(config, task, sides, Path(scratch))
                measured += 1
                if cache is not None:
                    cache.put("time_solve", key, row)
            done[task.task_id] = row
            if progress:
                progress(number, len(tasks), row)
    rows = [done[t.task_id] for t in tasks if t.task_id in done]  # suite order
    summary = summarize(rows, config.budgets, sides)
    summary.update({"suite_tasks": len(tasks), "complete": len(rows) == len(tasks),
                    "measured_now": measured, "from_cache": len(rows) - measured})
    return {"summary": summary, "tasks": rows}


def summarize(rows: list[dict], budgets, sides) -> dict:
    scored = [r for r in rows if "budgets" in r]
    time_solve, first_pass = {}, {}
    for b in budgets:
        cells = [r["budgets"][str(b)] for r in scored]
        time_solve[str(b)] = {
            "large": _share(sum(c["large"]["status"] == "passed" for c in cells), len(cells)),
            **{side: _share(sum(solved(c[side], c["deadline"]) for c in cells), len(cells))
               for side in sides}}
        first_pass[str(b)] = {side: _median([c[side]["first_pass"] for c in cells])
                              for side in ("large", *sides)}
    return {"time_solve": time_solve, "median_seconds_to_first_pass": first_pass,
            "tasks": len(scored), "skipped": len(rows) - len(scored)}


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def _median(values) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def write(results: dict, out_dir: Path, name: str, limit: int | None) -> Path:
    """Into NAME.json beside the FLOPs rows (``summary.time_solve``) for a whole suite; a run on
    the first --limit tasks goes to NAME-time-solve-smoke.json, and a suite not yet complete (a
    random sample of it, see ``run_order``) to NAME-time-solve-partial.json."""
    if limit or not results["summary"]["complete"]:
        kind = "smoke" if limit else "partial"
        path = out_dir / f"{name}-time-solve-{kind}.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        return path
    path = out_dir / f"{name}.json"
    data = json.loads(path.read_text()) if path.is_file() else {"summary": {}}
    data["summary"]["time_solve"] = results["summary"]["time_solve"]
    data["summary"]["time_solve_first_pass_seconds"] = results["summary"][
        "median_seconds_to_first_pass"]
    data["time_solve"] = results
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path
