"""Real repositories, the way llm-ls's testbed does it: does the product test a real project right?

Each repository is a pinned sdist fetched with pip and unpacked into the bench cache, with a venv
of its own holding it, its dependencies, its test dependencies and pytest (made once, outside this
repository). In each, up to ``--per-repo`` functions that the project's own tests select are
chosen by a fixed hash of their names among those with 1 to MAX_TESTS selected tests and a body of
at least two statements. Every chosen function goes through the product's one application layer
(``solve``, as ``budgetpass check`` does) with two bodies:

- its **own** body: the project's tests must pass it. One that fails means the harness (test
  discovery, the sandbox, the judge/executor split, the project's set-up inside the sandbox) broke
  something real, and the reason is recorded;
- a **wrong** body (``return None``): the tests must fail it. One that passes means the
  selected tests do not exercise the function (a property of the project, not a harness fault).

An own body that fails is run again as the control: the same tests on an untouched copy of the
project under plain pytest, no sandbox. Failing there too, it is the project's own failure on
this machine (e.g. a test that expects another tz database); passing there, it is a harness fault,
counted in ``summary.harness_faults`` (the goal: 0).

With ``--model``, each function is also filled by the product's own job (``generate``, the default
budget: one reference sample's FLOPs), and scored by the same tests: the share solved is the
testbed's headline for the model, beside the harness's own.

    flock /tmp/budgetpass-cpu.lock .venv/bin/python -m budgetpass.bench.testbed [--per-repo N]
        [--repos NAME ...] [--model] [--out PATH]

Writes bench/results/testbed.json; its ``summary`` holds ``functions``, ``own_body_passes``,
``stub_fails``, ``harness_faults`` and, with --model, ``generate_solved``.
"""

from __future__ import annotations

import argparse
import ast
import collections
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from budgetpass.app.config import build
from budgetpass.app.report import SolveError
from budgetpass.app.solve import GivenBodies, Request, solve
from budgetpass.generation.locate import functions
from budgetpass.verify.discovery import SKIP_DIRS, is_test_file
from budgetpass.verify.index import ProjectIndex

from .discovery import bench_cache, fetch_sdist

RESULTS = Path(__file__).resolve().parent / "results"
MAX_TESTS = 30
STUB = "    return None\n"  # wrong for most functions; not a stub the normaliser refuses


@dataclass(frozen=True)
class Repo:
    name: str
    spec: str  # what pip downloads (an exact version)
    package: str  # the folder holding the code, relative to the sdist's root
    test_deps: tuple[str, ...] = ()  # what its test requirements list, but for coverage/xdist


# Pure-Python projects whose sdists ship their tests; a mix of layouts (flat, src/, tests inside the
# package, a package whose __init__ imports everything), sizes and test styles.
REPOS = (
    Repo("toolz", "toolz==1.2.0", "toolz"),
    Repo("more-itertools", "more-itertools==11.2.1", "more_itertools"),
    Repo("boltons", "boltons==26.2.0", "boltons"),
    Repo("inflection", "inflection==0.5.1", "inflection"),
    Repo("humanize", "humanize==4.17.0", "src/humanize", ("freezegun", "pytest-benchmark")),
    Repo("python-dateutil", "python-dateutil==4.0.0", "src/dateutil",
         ("attrs", "freezegun", "hypothesis")),
    Repo("click", "click==8.5.1", "src/click"),
    Repo("sympy", "sympy==1.13.3", "sympy", ("hypothesis", "pytest-doctestplus")),
)


def project_python(repo: Repo, root: Path) -> str:
    """A venv with the project, its dependencies, its test dependencies and our pytest, made once."""
    import pytest

    deps = hashlib.sha256(" ".join(repo.test_deps).encode()).hexdigest()[:8]
    venv = bench_cache() / "testbed" / f"{root.name}-{deps}-venv"
    python = venv / "bin" / "python"
    if not (venv / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        str(root), f"pytest=={pytest.__version__}", *repo.test_deps], check=True)
        (venv / "ready").write_text("")
    return str(python)


def chosen_functions(repo: Repo, root: Path, per_repo: int) -> list[tuple[Path, str, str]]:
    """(file, qualified name, own body) of up to ``per_repo`` functions the tests select."""
    index = ProjectIndex(root).start()
    index.wait()
    found = []
    for folder, dirs, files in os.walk(root / repo.package):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and d not in ("tests", "test"))
        for name in sorted(files):
            if not name.endswith(".py") or is_test_file(name) or name == "conftest.py":
                continue
            path = Path(folder) / name
            text = path.read_text(encoding="utf-8", errors="replace")
            sites = [s for s in functions(text) if "<locals>" not in s.qualname]
            names = [s.qualname for s in sites]  # one defined twice (per platform): ambiguous
            sites = [s for s in sites if names.count(s.qualname) == 1]
            selected = index.find_tests_of([s.qualname for s in sites], target_file=path,
                                           located=sites)
            for site in sites:
                body = text[site.body_start:site.body_end]
                tests = selected[site.qualname].node_ids
                if 1 <= len(tests) <= MAX_TESTS and _statements(body) >= 2:
                    found.append((path, site.qualname, body))
    found.sort(key=lambda f: hashlib.sha256(f"{repo.name}:{f[0].name}:{f[1]}".encode()).digest())
    return found[:per_repo]


def _statements(body: str) -> int:
    try:
        return len(ast.parse(_dedented(body)).body)
    except SyntaxError:
        return 0


def _dedented(body: str) -> str:
    import textwrap

    return textwrap.dedent(body)


def check_function(path: Path, qualname: str, own: str, python: str) -> dict:
    """The own body and a stub through ``solve`` (as ``budgetpass check``): each one's verdict."""
    indent = own[:len(own) - len(own.lstrip())].split("\n")[-1] or "    "
    stub = STUB.replace("    ", indent, 1)
    config = build({"tests.python": python, "tests.stop_at_first_pass": False,
                    "tests.timeout_seconds": 120})
    started = time.monotonic()
    try:
        report = solve(Request(path, qualname), config, source=GivenBodies([own, stub]))
    except SolveError as exc:
        return {"error": str(exc), "seconds": round(time.monotonic() - started, 2)}
    runs = [c.run for c in report.candidates]
    row = {"tests": len(report.tests), "seconds": round(time.monotonic() - started, 2)}
    for label, run in zip(("own", "stub"), runs, strict=False):
        row[f"{label}_passes"] = bool(run and run.passed)
        if run and run.never_called:  # its tests passed without calling the function
            row[f"{label}_never_called"] = True
        if run:
            row[f"{label}_test_seconds"] = round(run.seconds, 2)
    if not row["own_passes"]:
        row["own_failure"] = (runs[0].summary() if runs and runs[0] else report.message)[:400]
        # The control: the same tests on the untouched project under plain pytest, no sandbox.
        row["plain_pytest_passes"] = plain_pytest_passes(report.project, report.tests, python)
    return row


def plain_pytest_passes(project: str, node_ids, python: str) -> bool:
    """Whether the selected tests pass under plain pytest in a copy of the project (the project's
    own result, to tell a harness fault from a test that fails here anyway)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="budgetpass-testbed-") as tmp:
        copy = Path(tmp) / "p"
        shutil.copytree(project, copy, symlinks=True,
                        ignore=lambda folder, names: [n for n in names if n in SKIP_DIRS])
        doctests = any(not is_test_file(n.split("::")[0].rsplit("/", 1)[-1]) for n in node_ids)
        done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *(["--doctest-modules"] if doctests else []), *node_ids],
                              cwd=copy, capture_output=True, timeout=600, check=False)
    return done.returncode == 0


def generate_function(path: Path, qualname: str, python: str) -> dict:
    """The product's own job on the function (default model and budget), scored by its tests."""
    config = build({"tests.python": python, "tests.timeout_seconds": 120})
    started = time.monotonic()
    try:
        report = solve(Request(path, qualname), config)
    except SolveError as exc:
        return {"generate_error": str(exc)}
    return {"generate_status": report.status,
            "generate_seconds": round(time.monotonic() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", nargs="*", default=[r.name for r in REPOS],
                        choices=[r.name for r in REPOS])
    parser.add_argument("--per-repo", type=int, default=6)
    parser.add_argument("--model", action="store_true",
                        help="also fill each function with the product's job (the default model)")
    parser.add_argument("--out", type=Path, default=RESULTS / "testbed.json")
    args = parser.parse_args(argv)
    rows = []
    for repo in (r for r in REPOS if r.name in args.repos):
        root = fetch_sdist(repo.spec)
        python = project_python(repo, root)
        for path, qualname, own in chosen_functions(repo, root, args.per_repo):
            row = {"repo": repo.name, "file": str(path.relative_to(root)), "function": qualname,
                   **check_function(path, qualname, own, python)}
            if args.model:
                row.update(generate_function(path, qualname, python))
            rows.append(row)
            print(json.dumps(row), flush=True)
    checked = [r for r in rows if "error" not in r]
    summary = {
        "functions": len(rows),
        "repos": len({r["repo"] for r in rows}),
        "own_body_passes": _share(sum(r.get("own_passes", False) for r in rows), len(rows)),
        "stub_fails": _share(sum(not r.get("stub_passes", True) for r in checked), len(checked)),
        # Stubs whose selected tests passed without calling the function: no verdict, not a pass.
        "stub_never_called": sum(bool(r.get("stub_never_called")) for r in checked),
        "errors": len(rows) - len(checked),
        "median_seconds_per_function": round(statistics.median(r["seconds"] for r in rows), 2)
        if rows else None,
        # Own bodies that fail here but pass under plain pytest: the harness's faults (the goal: 0).
        "harness_faults": sum(not r.get("own_passes") and r.get("plain_pytest_passes", True)
                              for r in rows),
        "own_body_failures": [f"{r['repo']}: {r['function']}: "
                              f"{r.get('own_failure') or r.get('error')} (plain pytest: "
                              f"{'passes' if r.get('plain_pytest_passes') else 'fails too'})"
                              for r in rows if not r.get("own_passes")],
    }
    if args.model:
        summary["generate_solved"] = _share(
            sum(r.get("generate_status") == "passed" for r in rows), len(rows))
        summary["generate_statuses"] = dict(collections.Counter(
            r.get("generate_status", "error") for r in rows))
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    return 0


def _share(count: int, total: int) -> float | None:
    return round(count / total, 3) if total else None


if __name__ == "__main__":
    sys.exit(main())
