"""Hostile candidates: each is contained, reported as failing, and changes nothing outside its copy.

The corpus is tests/verify/attacks/: each file is the whole candidate module ``mod.py`` defining
``target()``; a test that needs 42 from it calls it in the test body, or in a fixture when the file
sets ``WHERE = "fixture"``. Each attack runs through both paths: a fresh sandbox per candidate
(a cold worker, ``_fresh``) and the warm worker (a fork per candidate), and once more all together in one
warm worker beside a correct candidate that must still pass.
"""

import ast
import os
import socket
import sys
import threading
from pathlib import Path

import pytest
from budgetpass.verify import sandbox
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.session import run_each

from tests.conftest import tree_digest

pytestmark = pytest.mark.slow

ATTACKS_DIR = Path(__file__).with_name("attacks")
ATTACKS = sorted(p.stem for p in ATTACKS_DIR.glob("*.py") if p.stem != "__init__")
TEST_IN_CALL = "from mod import target\n\n\ndef test_target():\n    assert target() == 42\n"
TEST_IN_FIXTURE = ("import pytest\nfrom mod import target\n\n\n@pytest.fixture\ndef value():\n"
                   "    return target()\n\n\ndef test_target(value):\n    assert value == 42\n")
CORRECT = "def target():\n    return 42\n"
LIMITS = sandbox.Limits(wall_seconds=6, cpu_seconds=6, memory_bytes=1 << 30, file_bytes=8 << 20,
                        processes=64)


def attack_source(name: str) -> str:
    return (ATTACKS_DIR / f"{name}.py").read_text()


def runs_in_fixture(source: str) -> bool:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "WHERE" for t in node.targets):
            return ast.literal_eval(node.value) == "fixture"
    return False


@pytest.fixture(scope="module")
def info():
    return sandbox.probe("auto")


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = []
    server.settimeout(0.2)

    def accept():
        for _ in range(100):
            try:
                conn, _ = server.accept()
                got.append(conn.recv(10))
                return
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname(), got
    server.close()


@pytest.fixture
def arena(tmp_path, listener):
    """A one-function project, a file outside it, a secret in the home folder; checks them after."""
    (host, port), received = listener
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    secret = Path.home() / f".budgetpass-test-secret-{os.getpid()}"
    secret.write_text("SECRET")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mod.py").write_text("def target():\n    return 0\n")
    (project / "attack_params.py").write_text(
        f"HOST, PORT = {host!r}, {port}\nOUTSIDE = {str(outside)!r}\n"
        f"SECRET = {str(secret)!r}\nPROJECT = {str(project)!r}\n")
    state = {"project": project, "before": None}

    def write_test(in_fixture: bool) -> None:
        (project / "test_mod.py").write_text(TEST_IN_FIXTURE if in_fixture else TEST_IN_CALL)
        state["before"] = tree_digest(project)

    state["write_test"] = write_test
    try:
        yield state
    finally:
        secret_intact = secret.read_text() == "SECRET"
        secret.unlink()
    assert tree_digest(project) == state["before"]
    assert outside.read_text() == "keep me"
    assert secret_intact
    assert not Path("/budgetpass-pwned").exists()
    if sandbox.probe("auto").kind == "bwrap":
        assert received == [], "data reached a host service from inside the sandbox"


def test_bwrap_is_available_in_ci(info):
    if os.environ.get("CI"):
        assert info.kind == "bwrap", info.warning


def test_the_corpus_covers_the_issue():
    assert {"network", "read_ssh", "write_outside", "fork_bomb", "memory_bomb", "infinite_loop",
            "huge_output", "kill_parent", "exit_in_fixture", "tamper_pytest_hooks",
            "forge_report_pipe", "fake_reports"} <= set(ATTACKS)


def _fresh(project, source, nodes, info, limits):
    """One candidate in a fresh sandbox and a cold Python (the baseline the warm worker is
    measured against; same isolation and reporting)."""
    with WarmWorker(project, info, limits, sys.executable, parallel=1, warm=False) as worker:
        return run_each(worker, "mod.py", [source], nodes)[0]


@pytest.mark.parametrize("path", ["fresh", "warm"])
@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_contained(name, path, info, tmp_path, arena):
    source = attack_source(name)
    arena["write_test"](runs_in_fixture(source))
    project = arena["project"]
    if path == "fresh":
        run = _fresh(project, source, ("test_mod.py::test_target",), info, LIMITS)
    else:
        with WarmWorker(project, info, LIMITS, sys.executable, parallel=1) as worker:
            run = run_each(worker, "mod.py", [source], ("test_mod.py::test_target",))[0]
            # The worker survived the attack: the next candidate still runs and passes.
            after = run_each(worker, "mod.py", [CORRECT], ("test_mod.py::test_target",))[0]
        assert after.passed, after.output
    assert not run.passed, f"{name} was reported as passing: {run.summary()}"
    assert run.outcomes and run.outcomes[0].outcome in ("failed", "error", "timeout")
    assert run.seconds < 30


def test_all_attacks_at_once_beside_a_correct_candidate(info, arena):
    """Two at a time in one worker: no attack passes, none stops its neighbour from passing."""
    arena["write_test"](False)
    names = [n for n in ATTACKS if not runs_in_fixture(attack_source(n))]
    candidates = [attack_source(n) for n in names] + [CORRECT]
    with WarmWorker(arena["project"], info, LIMITS, sys.executable, parallel=2) as worker:
        runs = run_each(worker, "mod.py", candidates, ("test_mod.py::test_target",))
    verdicts = {name: run.passed for name, run in zip(names + ["correct"], runs)}
    assert verdicts == {**{n: False for n in names}, "correct": True}


def test_a_correct_candidate_passes_with_per_test_outcomes(info, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mod.py").write_text("def target():\n    return 0\n")
    (project / "test_mod.py").write_text(
        TEST_IN_CALL + "\n\ndef test_positive():\n    assert target() > 0\n")
    nodes = ("test_mod.py::test_target", "test_mod.py::test_positive")
    run = _fresh(project, CORRECT, nodes, info, sandbox.Limits(wall_seconds=30))
    assert run.passed, run.output
    assert [(o.node_id, o.outcome) for o in run.outcomes] == [(n, "passed") for n in nodes]
    wrong = _fresh(project, "def target():\n    return 41\n", nodes, info,
                   sandbox.Limits(wall_seconds=30))
    assert [(o.outcome, (o.message.splitlines() or [""])[0]) for o in wrong.outcomes] == [
        ("failed", "assert 41 == 42"), ("passed", "")]
