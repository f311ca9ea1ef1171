"""Issue 13's attacks, each through the ``budgetpass check`` path (tests/verify/attacks).

For every attack: it is not reported passed nor selected; a wrong body after it still fails (it
rigged nothing for the next candidate) and a correct one still passes (the worker still serves);
nothing outside the candidate's folder changed (the project, a secret in the home folder, a
canary outside); no process of the run outlives it; the check returns within its deadline. Attacks
that probe a limit or the host answer correctly only when they got through, so an escape shows as
a pass. The last test prints: tried / false passes / escapes.
"""

from __future__ import annotations

import ast
import os
import socket
import threading
from pathlib import Path

import pytest
from budgetpass.app.config import TestsConfig
from budgetpass.verify import sandbox

from tests.conftest import tree_digest
from tests.verify.attacks import check_bodies

pytestmark = pytest.mark.slow

ATTACKS_DIR = Path(__file__).with_name("attacks")
ATTACKS = sorted(p.stem for p in ATTACKS_DIR.glob("*.py") if p.stem != "__init__")
CLASSES = ("forged verdict", "worker acting for the candidate", "limits per candidate",
           "host reachable")
MODULE = 'def target(n):\n    """Twice n."""\n    raise NotImplementedError\n'
TESTS = ("import pytest\nfrom mod import target\n\n\n@pytest.fixture\ndef value():\n"
         "    return target(21)\n\n\ndef test_double():\n    assert target(1) == 2\n\n\n"
         "def test_in_fixture(value):\n    assert value == 42\n")
CORRECT, WRONG = "    return n * 2\n", "    return n + 1 if n else 0\n"
# The limits every attack runs under, set as a user would (``budgetpass check``'s flags); the
# attacks read them from attack_params.py to aim just past them.
FLAGS = ["--sandbox", "bwrap", "--test-timeout", "8", "--test-memory-mb", "512",
         "--test-disk-mb", "64"]
LIMITS = TestsConfig(sandbox="bwrap", timeout_seconds=8, memory_mb=512, disk_mb=64).limits
TALLY = {"tried": 0, "false passes": [], "escapes": []}


def attack(name: str) -> tuple[str, str]:
    """(class, body) of an attack file: the body of its ``target``, as indented there."""
    source = (ATTACKS_DIR / f"{name}.py").read_text()
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "target")
    klass = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and n.targets[0].id == "CLASS")
    lines = source.splitlines(keepends=True)
    body_start = func.body[1].lineno if isinstance(func.body[0], ast.Expr) else func.body[0].lineno
    return klass, "".join(lines[body_start - 1:func.end_lineno])


def test_the_corpus_covers_every_class():
    classes = [attack(name)[0] for name in ATTACKS]
    assert len(ATTACKS) >= 40
    assert set(classes) == set(CLASSES), set(classes) ^ set(CLASSES)


@pytest.fixture(scope="module")
def info():
    found = sandbox.probe("auto")
    if found.kind != "bwrap":
        if os.environ.get("CI"):
            pytest.fail(f"CI must have bubblewrap: {found.warning}")
        pytest.skip("the attacks are checked in the bwrap sandbox (the process fallback is "
                    f"weaker by design, SECURITY.md): {found.warning}")
    return found


@pytest.fixture
def listeners(tmp_path):
    """A TCP service on loopback and a world-writable unix socket on the host; what reached them."""
    got: list[bytes] = []
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix_path = str(tmp_path / "host.sock")
    unix.bind(unix_path)
    os.chmod(unix_path, 0o666)
    os.chmod(tmp_path, 0o755)
    stop = threading.Event()

    def serve(server):
        server.listen(4)
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                got.append(conn.recv(10) or b"(connected)")
            except OSError:
                continue

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in (tcp, unix)]
    for thread in threads:
        thread.start()
    yield tcp.getsockname(), unix_path, got
    stop.set()
    for thread in threads:
        thread.join()
    tcp.close()
    unix.close()


@pytest.fixture
def arena(tmp_path, listeners):
    (host, port), unix_path, received = listeners
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    world = Path("/var/tmp") / f"budgetpass-canary-{os.getpid()}"
    world.write_text("CANARY")
    os.chmod(world, 0o644)
    secret = Path.home() / f".budgetpass-test-secret-{os.getpid()}"
    secret.write_text("SECRET")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mod.py").write_text(MODULE)
    (project / "test_mod.py").write_text(TESTS)
    (project / "attack_params.py").write_text(
        f"HOST, PORT = {host!r}, {port}\nUNIX_SOCKET = {unix_path!r}\nOUTSIDE = {str(outside)!r}\n"
        f"SECRET = {str(secret)!r}\nWORLD_READABLE = {str(world)!r}\nPROJECT = {str(project)!r}\n"
        f"MEMORY, DISK, FILE_SIZE = {LIMITS.memory_bytes}, {LIMITS.disk_bytes}, "
        f"{LIMITS.file_bytes}\nPROCESSES = {LIMITS.processes}\n")
    before = {"project": tree_digest(project), "outside": outside.read_text(),
              "secret": secret.read_text()}

    def changed() -> list[str]:
        after = {"project": tree_digest(project),
                 "outside": outside.read_text() if outside.exists() else None,
                 "secret": secret.read_text() if secret.exists() else None}
        return [k for k in before if before[k] != after[k]] + (
            ["/budgetpass-pwned"] if Path("/budgetpass-pwned").exists() else [])

    try:
        yield {"project": project, "received": received, "changed": changed}
    finally:
        secret.unlink(missing_ok=True)
        world.unlink(missing_ok=True)


def leftover_processes(project: Path) -> list[str]:
    """Processes whose command line names the project (e.g. a fallback run's), after the check."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(project) in cmdline:
            found.append(f"{pid}: {cmdline[:80]}")
    return found


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_contained(name, info, arena):
    klass, body = attack(name)
    project = arena["project"]
    result = check_bodies(project, "mod.py::target", [body, WRONG, CORRECT], FLAGS)
    assert result["exit"] == 0, f"budgetpass check of {name} exited {result['exit']}"
    runs = result["candidates"]
    TALLY["tried"] += 1
    if runs[0].get("passed") or runs[1].get("passed") or result["selected"] in (0, 1):
        TALLY["false passes"].append(name)
    leftovers = result["lingering"] + leftover_processes(project)
    changed = arena["changed"]()
    escaped = bool(arena["received"]) or bool(leftovers) or bool(changed)
    if escaped:
        TALLY["escapes"].append(name)
    assert result["tests"] == ["test_mod.py::test_double", "test_mod.py::test_in_fixture"]
    assert [r["tested"] for r in runs] == [True] * 3, runs
    assert not runs[0]["passed"], f"{name} ({klass}) was reported passed: {runs[0]}"
    assert not runs[1]["passed"], f"after {name}, a wrong body passed: the next run was rigged"
    assert runs[2]["passed"], f"after {name}, the correct body failed: {runs[2]}"
    assert (result["status"], result["selected"]) == ("passed", 2)
    assert runs[0]["outcomes"] and all(
        o["outcome"] in ("failed", "error", "timeout") for o in runs[0]["outcomes"]), runs[0]
    assert not arena["received"], f"{name} reached a host service: {arena['received']}"
    assert not leftovers, f"{name} left processes running: {leftovers}"
    assert not changed, f"{name} changed {changed} outside its folder"
    assert result["seconds"] < 3 * LIMITS.wall_seconds + 30


def test_tally():
    """Run after the attacks (file order): tried / false passes / escapes."""
    print(f"\nattacks tried {TALLY['tried']} / false passes {len(TALLY['false passes'])} "
          f"{TALLY['false passes']} / escapes {len(TALLY['escapes'])} {TALLY['escapes']}")
    if TALLY["tried"]:
        assert not TALLY["false passes"] and not TALLY["escapes"]
