"""Run selected pytest node ids against one candidate, in a scratch copy of the project."""

from __future__ import annotations

import os
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from . import sandbox
from .discovery import SKIP_DIRS

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", ".git")


@dataclass(frozen=True)
class TestOutcome:
    node_id: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""


@dataclass(frozen=True)
class CandidateRun:
    passed: bool
    outcomes: tuple[TestOutcome, ...]
    seconds: float
    timed_out: bool
    returncode: int | None
    output: str = field(repr=False, default="")

    @property
    def n_passed(self) -> int:
        return sum(o.outcome == "passed" for o in self.outcomes)

    def summary(self) -> str:
        if self.timed_out:
            return "timed out"
        failing = [o for o in self.outcomes if o.outcome in ("failed", "error")]
        if self.passed:
            return f"{self.n_passed} passed"
        if failing:
            first = failing[0]
            reason = (first.message.splitlines() or [""])[0][:160]
            return f"{len(failing)} failing, first {first.node_id}: {reason}"
        return f"no test result (exit {self.returncode}): {self.output.strip()[-160:]}"


def find_project_root(path: Path) -> Path:
    for folder in [path.parent, *path.parent.parents]:
        if any((folder / m).exists() for m in PROJECT_MARKERS):
            return folder
    return path.parent


def default_python(project: Path) -> str:
    for candidate in (project / ".venv" / "bin" / "python", project / "venv" / "bin" / "python"):
        if candidate.exists():
            return str(candidate)
    return sys.executable


def copy_project(project: Path, dest: Path) -> None:
    """A private copy for one candidate; version control, venvs and caches are left out."""
    shutil.copytree(project, dest, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n in SKIP_DIRS])


def _parse_junit(path: Path) -> list[tuple[str, str, str, str]]:
    """(classname, name, outcome, message) per testcase."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return []
    cases = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip()
                break
        cases.append((case.get("classname", ""), case.get("name", ""), outcome, message))
    return cases


def _node_id_of(classname: str, name: str, files: list[str]) -> str:
    """pytest node id of a junit testcase: its classname is the dotted module, then classes."""
    for rel in sorted(files, key=len, reverse=True):
        module = rel[:-3].replace("/", ".")
        if classname == module or classname.startswith(module + "."):
            classes = [c for c in classname[len(module):].split(".") if c]
            return "::".join([rel, *classes, name])
    return f"{classname}::{name}"


def run_candidate(project: Path, rel_file: str, new_text: str, node_ids: tuple[str, ...],
                  scratch: Path, info: sandbox.SandboxInfo, limits: sandbox.Limits,
                  python: str) -> CandidateRun:
    """Copy the project, write the candidate's version of one file, run the tests, read junit."""
    work = scratch / "work"
    out = scratch / "out"
    copy_project(project, work)
    out.mkdir()
    (work / rel_file).write_text(new_text, encoding="utf-8")
    python_path = [sandbox.SANDBOX_WORKDIR]
    if (work / "src").is_dir():
        python_path.insert(0, sandbox.SANDBOX_WORKDIR + "/src")
    env = {
        "PATH": os.pathsep.join([str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": sandbox.SANDBOX_OUTDIR,
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }
    report = f"{sandbox.SANDBOX_OUTDIR}/junit.xml"
    argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no",
            f"--junitxml={report}", "-o", "junit_family=xunit2", "--rootdir", sandbox.SANDBOX_WORKDIR,
            *node_ids]
    result = sandbox.run(argv, work, out, info, limits, env, hide=[str(project)])
    cases = _parse_junit(out / "junit.xml")
    files = sorted({n.split("::")[0] for n in node_ids})
    outcomes = tuple(
        TestOutcome(_node_id_of(cls, name, files), outcome, message)
        for cls, name, outcome, message in cases
    )
    passed = (
        result.returncode == 0
        and not result.timed_out
        and any(o.outcome == "passed" for o in outcomes)
        and all(o.outcome in ("passed", "skipped") for o in outcomes)
    )
    if result.timed_out:
        outcomes = outcomes or tuple(TestOutcome(n, "timeout", f"killed after {limits.wall_seconds:g} s")
                                     for n in node_ids)
    return CandidateRun(passed, outcomes, result.seconds, result.timed_out, result.returncode,
                        result.output)
