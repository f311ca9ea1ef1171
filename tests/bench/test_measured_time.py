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
