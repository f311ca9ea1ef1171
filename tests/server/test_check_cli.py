"""`budgetpass check PATH::FUNC --bodies FILE`: given bodies through generate's testing, no model."""

import json
import subprocess
import sys

import pytest

from tests.conftest import double_project, tree_digest

BUDGETPASS = [sys.executable, "-m", "budgetpass.server.cli"]


def check(*args, input_text=None):
    return subprocess.run([*BUDGETPASS, "check", *map(str, args)], capture_output=True, text=True,
                          input=input_text, timeout=600, check=False)


@pytest.fixture
def project(tmp_path):
    return double_project(tmp_path / "proj",
                          "from mod import double\n\n\ndef test_double():\n    assert double(21) == 42\n")


@pytest.mark.slow
def test_check_selects_the_passing_body_and_writes_nothing(project, tmp_path):
    bodies = tmp_path / "bodies.jsonl"
    bodies.write_text("".join(json.dumps({"body": b}) + "\n" for b in (
        "    return x\n", "    import pytest\n    pytest.skip('no')\n", "    return x * 2\n")))
    before = tree_digest(project)
    proc = check(f"{project}/mod.py::double", "--bodies", bodies, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["status"], report["selected"], report["passing"]) == ("passed", 2, [2])
    assert report["tests"] == ["test_mod.py::test_double"]
    assert [c["passed"] for c in report["candidates"]] == [False, False, True]
    assert "pytest.skip" in report["candidates"][1]["outcomes"][0]["message"]
    assert tree_digest(project) == before


@pytest.mark.slow
def test_check_exit_codes(project, tmp_path):
    failing = check(f"{project}/mod.py::double", "--bodies", "-",
                    input_text=json.dumps({"body": "    return 0\n"}) + "\n")
    assert failing.returncode == 1 and "FAILED" in failing.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n')
    wrong_input = check(f"{project}/mod.py::double", "--bodies", bad)
    assert wrong_input.returncode == 2 and 'expected {"body": "..."}' in wrong_input.stderr
    missing = check(f"{project}/mod.py::nothing", "--bodies", "-",
                    input_text=json.dumps({"body": "    return 0\n"}) + "\n")
    assert missing.returncode == 2
