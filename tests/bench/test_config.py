"""Bad settings for `budgetpass bench reallocation` fail before any model or file is touched."""

import pytest
from budgetpass.server import cli


@pytest.mark.parametrize("args, message", [
    (["--budgets", "8"], "budgets must lie in 1..n_large (4)"),
    (["--n-small", "0"], "--n-small and --n-large must be at least 1"),
    (["--limit", "0"], "--limit must be at least 1"),
    (["--rankers", "oracle"], "unknown ranker(s) oracle"),
])
def test_bad_settings_exit_2_with_a_reason(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["bench", "reallocation", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_tasks_file_names_the_line(tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"task_id": "x"}\n')
    code = cli.main(["bench", "reallocation", "--tasks", str(tasks), "--small", "smollm2-135m",
                     "--large", "smollm2-135m", "--cache", str(tmp_path / "c"),
                     "--out", str(tmp_path / "out"), "-q"])
    assert code == 2
    assert "tasks.jsonl:1: a task needs string fields" in capsys.readouterr().err
