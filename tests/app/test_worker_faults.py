"""A test worker that cannot start because the host changed under the server (disk full, bwrap
gone) is a clear SolveError, leaves nothing behind, and the next start works once the cause is
gone."""

from __future__ import annotations

import errno
import sys
import tempfile
from pathlib import Path

import pytest
from budgetpass.app.report import SolveError
from budgetpass.app.workers import WorkerKey, start_worker
from budgetpass.verify import runner, sandbox
from budgetpass.verify.sandbox import Limits, SandboxInfo


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mod.py").write_text("def f(x):\n    return x\n")
    (root / "test_mod.py").write_text("from mod import f\n\n\ndef test_f():\n    assert f(1) == 1\n")
    return root


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch) -> Path:
    """A private TMPDIR, so what a failed start leaves behind can be counted."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(autouse=True)
def fresh_probe():
    sandbox.probe.cache_clear()
    yield
    sandbox.probe.cache_clear()


def key(project: Path, kind: str) -> WorkerKey:
    return WorkerKey(project, sys.executable, kind, Limits(wall_seconds=10, cpu_seconds=11), (),
                     1, ())


def test_a_full_disk_at_the_project_copy_is_named_and_the_partial_copy_removed(project, scratch,
                                                                                monkeypatch):
    real_copy = runner.copy_project

    def copy_then_fill_the_disk(source, dest, bytecode=None):
        real_copy(source, dest, bytecode)  # some bytes landed before the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device", str(dest / "mod.py"))

    monkeypatch.setattr(runner, "copy_project", copy_then_fill_the_disk)
    info = sandbox.probe("process")
    with pytest.raises(SolveError, match="no space left to copy the project") as caught:
        start_worker(key(project, "process"), info)
    assert str(scratch) in str(caught.value) and "TMPDIR" in str(caught.value)
    assert list(scratch.iterdir()) == []  # nothing half-copied stays on the full disk

    monkeypatch.setattr(runner, "copy_project", real_copy)  # space was freed
    worker = start_worker(key(project, "process"), info)
    try:
        assert worker.proc.poll() is None
    finally:
        worker.close()
    assert list(scratch.iterdir()) == []


def test_bwrap_gone_after_the_probe_is_named_and_the_next_request_probes_again(project, scratch,
                                                                               monkeypatch):
    if sandbox.probe("auto").kind != "bwrap":  # cached, as a running server holds it
        pytest.skip("bwrap does not work on this machine")
    real_which = sandbox.shutil.which
    gone = scratch / "bin" / "bwrap"  # where bwrap was when the server probed; removed since

    def which(name, *args, **kwargs):
        return str(gone) if name == "bwrap" else real_which(name, *args, **kwargs)

    monkeypatch.setattr(sandbox.shutil, "which", which)
    with pytest.raises(SolveError, match="bwrap is gone") as caught:
        start_worker(key(project, "bwrap"), SandboxInfo("bwrap", None))  # probed before it went
    assert "set the sandbox to 'process'" in str(caught.value)
    assert list(scratch.iterdir()) == []
    # The next request does not trust the old probe: auto falls back visibly, bwrap says why.
    monkeypatch.setattr(sandbox.shutil, "which",
                        lambda name, *a, **k: None if name == "bwrap" else real_which(name, *a, **k))
    fallback = sandbox.probe("auto")
    assert fallback.kind == "process" and "bwrap is not installed" in fallback.warning
    with pytest.raises(RuntimeError, match="bwrap' was requested but bwrap is not installed"):
        sandbox.probe("bwrap")
