"""The measured-time protocol's pieces: a task becomes a project whose hidden test the product
finds and runs as the project's own, and the scoring of "solved within the deadline"."""

from budgetpass.app.config import build
from budgetpass.app.solve import GivenBodies, Request, solve
from budgetpass.bench.measured_time import solved, summarize, task_project
from budgetpass.bench.tasks import Task

TASK = Task("Demo/0", 'def twice(x: int) -> int:\n    """Twice x."""\n', "twice",
            "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(0) == 0\n")


def test_a_task_is_a_project_whose_hidden_test_the_product_runs(tmp_path):
    project = task_project(TASK, tmp_path)
    assert "raise NotImplementedError" in (project / "solution.py").read_text()
    config = build({"tests.sandbox": "auto"})

    def check(body):
        return solve(Request(project / "solution.py", "twice"), config,
                     source=GivenBodies([body]))

    good, bad = check("    return 2 * x\n"), check("    return x + 2\n")
    assert "test_solution.py::test_twice" in good.tests
    assert (good.status, bad.status) == ("passed", "failed")


def test_solved_means_a_pass_by_the_deadline_and_shares_are_per_budget():
    def cell(deadline, large, small):
        return {"deadline": deadline, "large": {"status": large[0], "first_pass": large[1]},
                "small": {"status": small[0], "first_pass": small[1]}}

    rows = [{"task_id": "a", "budgets": {"1": cell(10, ("passed", 9.5), ("passed", 4.0))}},
            {"task_id": "b", "budgets": {"1": cell(10, ("failed", None), ("passed", 10.5))}},
            {"task_id": "c", "skipped": "not a function to fill"}]
    assert solved(rows[0]["budgets"]["1"]["small"], 10)
    assert not solved(rows[1]["budgets"]["1"]["small"], 10)  # passed, but after the deadline
    summary = summarize(rows, (1,), ("small",))
    assert summary["time_solve"] == {"1": {"large": 0.5, "small": 0.5}}
    assert summary["median_seconds_to_first_pass"]["1"] == {"large": 9.5, "small": 7.25}
    assert (summary["tasks"], summary["skipped"]) == (2, 1)


def test_a_run_resumes_from_its_cached_rows_and_a_stopped_run_is_a_random_partial_sample(
        tmp_path, monkeypatch):
    from budgetpass.bench import measured_time
    from budgetpass.bench.reallocation import Cache, ReallocationConfig

    tasks = [Task(f"Demo/{i}", TASK.prompt, TASK.entry_point, TASK.test) for i in range(20)]
    order = measured_time.run_order(tasks, seed=0)
    assert sorted(t.task_id for t in order) == sorted(t.task_id for t in tasks)
    assert order != tasks and order == measured_time.run_order(tasks, seed=0)
    assert [t.task_id for t in order[:5]] != [f"Demo/{i}" for i in range(5)]

    measured = []

    def measure(config, task, sides, scratch):  # the real one runs both models (slow tests)
        measured.append(task.task_id)
        if len(measured) == 3:
            monkeypatch.setattr(measured_time.time, "monotonic", lambda: 1e12)
        cell = {"deadline": 5.0, "large": {"status": "passed", "first_pass": 4.0},
                "small": {"status": "passed", "first_pass": 2.0}}
        return {"task_id": task.task_id, "budgets": {"1": cell}}

    monkeypatch.setattr(measured_time, "measure_task", measure)
    config, cache = ReallocationConfig(budgets=(1,)), Cache(tmp_path / "cache")
    first = measured_time.run_measured_time(config, tasks, False, cache=cache, stop_at=1e9)
    # stopped between tasks once the clock passed stop_at: three measured, in run order
    assert measured == [t.task_id for t in order[:3]]
    assert first["summary"]["complete"] is False
    suite_order = [t.task_id for t in tasks if t.task_id in measured]
    assert [r["task_id"] for r in first["tasks"]] == suite_order
    path = measured_time.write(first, tmp_path, "reallocation", limit=None)
    assert path.name == "reallocation-time-solve-partial.json"
    assert not (tmp_path / "reallocation.json").exists()

    monkeypatch.undo()
    monkeypatch.setattr(measured_time, "measure_task", measure)
    measured.clear()
    second = measured_time.run_measured_time(config, tasks, False, cache=cache)
    assert sorted(measured) == sorted(t.task_id for t in order[3:])  # the cached three not rerun
    assert second["summary"]["complete"] and second["summary"]["from_cache"] == 3
    assert measured_time.write(second, tmp_path, "reallocation", None).name == "reallocation.json"
    # a row kept under other conditions (another budget set) is not reused
    def key(budgets):
        return measured_time.row_key(
            measured_time.conditions(ReallocationConfig(budgets=budgets), ("small",)), tasks[0])

    assert key((1,)) != key((1, 2))
