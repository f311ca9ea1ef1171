"""Hostile candidates: each is contained, reported as failing, and changes nothing outside its copy.

Each attack is a function body spliced into a one-function project whose test calls it.
"""

import os
import socket
import sys
import threading
from pathlib import Path

import pytest
from budgetpass.verify import sandbox
from budgetpass.verify.runner import run_candidate

from tests.conftest import tree_digest

pytestmark = pytest.mark.slow

MODULE = "def target():\n{body}"
TEST = "from mod import target\n\n\ndef test_target():\n    assert target() == 42\n"

ATTACKS = {
    "infinite_loop": "    while True:\n        pass\n",
    "sleep_forever": "    import time\n    time.sleep(3600)\n",
    "memory_bomb": "    x = bytearray(10 * 1024 ** 3)\n    return 42\n",
    "fork_bomb": "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
    "huge_output": "    import sys\n    while True:\n        sys.stdout.write('x' * 65536)\n",
    "huge_file": "    with open('big', 'wb') as f:\n        while True:\n            f.write(b'x' * 1048576)\n",
    "network": "    import socket\n    socket.create_connection((HOST, PORT), timeout=2).sendall(b'leak')\n    return 42\n",
    "write_outside": "    open(OUTSIDE, 'w').write('pwned')\n    return 42\n",
    "delete_outside": "    import os\n    os.remove(OUTSIDE)\n    return 42\n",
    "read_home_secret": "    return 42 if 'SECRET' in open(SECRET).read() else 0\n",
    "kill_parent": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    os.kill(1, signal.SIGKILL)\n    return 42\n",
    "exit_zero": "    import os\n    os._exit(0)\n",
}


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
        for _ in range(50):
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


def test_bwrap_is_available_in_ci(info):
    if os.environ.get("CI"):
        assert info.kind == "bwrap", info.warning


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_contained(name, info, tmp_path, listener):
    (host, port), received = listener
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    home_secret = Path.home() / f".budgetpass-test-secret-{os.getpid()}"
    home_secret.write_text("SECRET")
    project = tmp_path / "proj"
    project.mkdir()
    body = ATTACKS[name]
    header = f"HOST, PORT = {host!r}, {port}\nOUTSIDE = {str(outside)!r}\nSECRET = {str(home_secret)!r}\n\n"
    (project / "mod.py").write_text(header + MODULE.format(body="    return 0\n"))
    (project / "test_mod.py").write_text(TEST)
    before = tree_digest(project)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    limits = sandbox.Limits(wall_seconds=8, cpu_seconds=8, memory_bytes=1 << 30,
                            file_bytes=8 << 20, processes=64)
    try:
        run = run_candidate(project, "mod.py", header + MODULE.format(body=body),
                            ("test_mod.py::test_target",), scratch, info, limits, sys.executable)
    finally:
        secret_intact = home_secret.read_text() == "SECRET"
        home_secret.unlink()
    assert not run.passed, f"{name} was reported as passing: {run.summary()}"
    assert run.seconds < 30
    assert tree_digest(project) == before
    assert outside.read_text() == "keep me"
    assert secret_intact
    if info.kind == "bwrap":
        assert received == [], "data reached a host service from inside the sandbox"
    assert sum(p.stat().st_size for p in scratch.rglob("*") if p.is_file()) < 64 << 20


def test_a_correct_candidate_passes(info, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mod.py").write_text(MODULE.format(body="    return 0\n"))
    (project / "test_mod.py").write_text(TEST)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = run_candidate(project, "mod.py", MODULE.format(body="    return 42\n"),
                        ("test_mod.py::test_target",), scratch, info, sandbox.Limits(wall_seconds=30),
                        sys.executable)
    assert run.passed, run.output
    assert [(o.node_id, o.outcome) for o in run.outcomes] == [("test_mod.py::test_target", "passed")]
