"""scripts/system-deps.sh, the first step of `make demo` and `make test`, run for real against a
PATH where chosen commands are missing or replaced (a non-root `id`, an `apt-get` that records
what it was asked, a `bwrap` that is blocked), so that every branch runs here without changing
the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "system-deps.sh"
SYSTEM_BINS = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")


def fake_path(tmp_path: Path, drop: set[str], scripts: dict[str, str]) -> Path:
    """A bin folder linking every system command but `drop`, plus `scripts` (name -> sh body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in SYSTEM_BINS:
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            target = bin_dir / name
            if name in drop or name in scripts or target.exists() or target.is_symlink():
                continue
            target.symlink_to(os.path.join(folder, name))
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return bin_dir


def as_uid(uid: int) -> str:
    return f'if [ "$1" = -u ]; then echo {uid}; else exec /usr/bin/id "$@"; fi'


def recording_apt(log: Path, bin_dir_var: str = "$FAKE_BIN", fail: bool = False) -> str:
    """apt-get that logs its arguments; `install ... bubblewrap` drops a working bwrap in PATH."""
    if fail:
        return f'echo "apt-get $*" >> {log}; echo "E: Unable to locate package $*" >&2; exit 100'
    return (f'echo "apt-get $*" >> {log}\n'
            f'case "$*" in *bubblewrap*) printf "#!/bin/sh\\nexit 0\\n" > {bin_dir_var}/bwrap; '
            f'chmod +x {bin_dir_var}/bwrap;; esac')


def run(mode: str, bin_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), mode], capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/tmp"),
             "PYTHON": sys.executable, "FAKE_BIN": str(bin_dir), **env})


def test_demo_without_bwrap_or_root_says_what_to_run_and_changes_nothing(tmp_path):
    log = tmp_path / "apt.log"
    bin_dir = fake_path(tmp_path, {"bwrap", "sudo"},
                        {"id": as_uid(1000), "apt-get": recording_apt(log)})
    proc = run("demo", bin_dir)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "run: sudo apt-get update && sudo apt-get install -y bubblewrap, then make demo" in lines[0]
    assert "BUDGETPASS_SANDBOX=process make demo" in lines[0] and "UNSANDBOXED" in lines[0]
    assert not log.exists()


def test_demo_goes_on_unsandboxed_only_when_asked(tmp_path):
    bin_dir = fake_path(tmp_path, {"bwrap", "sudo"}, {"id": as_uid(1000)})
    proc = run("demo", bin_dir, BUDGETPASS_SANDBOX="process")
    assert proc.returncode == 0
    assert "bubblewrap is missing: candidates will run UNSANDBOXED" in proc.stderr


def test_root_installs_every_missing_package_in_one_apt_call(tmp_path):
    log = tmp_path / "apt.log"
    bin_dir = fake_path(tmp_path, {"bwrap", "setpriv"},
                        {"id": as_uid(0), "apt-get": recording_apt(log)})
    proc = run("demo", bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert "installing system packages with apt-get: bubblewrap util-linux" in proc.stdout
    assert log.read_text().splitlines() == ["apt-get update -qq",
                                            "apt-get install -y -qq bubblewrap util-linux"]


def test_passwordless_sudo_is_used(tmp_path):
    log = tmp_path / "apt.log"
    sudo = f'echo "sudo $*" >> {log}; [ "$1" = -n ] && shift; exec "$@"'
    bin_dir = fake_path(tmp_path, {"bwrap"}, {"id": as_uid(1000), "sudo": sudo,
                                              "apt-get": recording_apt(log)})
    proc = run("demo", bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == [
        "sudo -n true", "sudo apt-get update -qq", "apt-get update -qq",
        "sudo apt-get install -y -qq bubblewrap", "apt-get install -y -qq bubblewrap"]


def test_a_failing_apt_shows_its_error(tmp_path):
    log = tmp_path / "apt.log"
    bin_dir = fake_path(tmp_path, {"rg"}, {"id": as_uid(0), "apt-get": recording_apt(log, fail=True)})
    proc = run("test", bin_dir)
    assert proc.returncode == 1
    assert "E: Unable to locate package" in proc.stderr
    assert "apt-get failed installing ripgrep" in proc.stderr


def test_test_mode_lists_the_editor_packages(tmp_path):
    bin_dir = fake_path(tmp_path, {"chromium", "rg", "sudo"}, {"id": as_uid(1000)})
    assert run("demo", bin_dir).returncode == 0  # the demo needs neither
    proc = run("test", bin_dir)
    assert proc.returncode == 1
    assert "sudo apt-get install -y chromium ripgrep, then make test again" in proc.stderr
    assert "BUDGETPASS_SANDBOX" not in proc.stderr


def test_a_blocked_bwrap_stops_the_demo(tmp_path):
    bin_dir = fake_path(tmp_path, set(), {
        "bwrap": 'echo "bwrap: setting up uid map: Permission denied" >&2; exit 1'})
    proc = run("demo", bin_dir)
    assert proc.returncode == 1
    assert "bwrap is installed but does not work here (bwrap: setting up uid map" in proc.stderr
    assert run("demo", bin_dir, BUDGETPASS_SANDBOX="process").returncode == 0


def test_a_system_node_other_than_20_is_no_stop_and_pythons_headers_are_asked_for(tmp_path):
    """node 20 comes from PyPI (scripts/node20.sh), so Debian's node 18 does not matter; the vLLM
    tests compile against the interpreter's headers, so test mode asks for python3-dev when
    Python.h is missing."""
    log = tmp_path / "apt.log"
    no_headers = tmp_path / "python-without-headers"
    no_headers.write_text(f'#!/bin/sh\ncase "$2" in *Python.h*) exit 1;; esac\n'
                          f'exec {sys.executable} "$@"\n')
    no_headers.chmod(0o755)
    bin_dir = fake_path(tmp_path, {"rg"}, {"id": as_uid(0), "node": 'echo v18.20.4',
                                           "apt-get": recording_apt(log)})
    proc = run("test", bin_dir, PYTHON=str(no_headers))
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines()[-1] == "apt-get install -y -qq python3-dev ripgrep"
    assert run("demo", bin_dir, PYTHON=str(no_headers)).returncode == 0  # not for the demo
