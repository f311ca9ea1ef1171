"""Per-candidate overhead of testing: warm worker (fork per candidate) vs a fresh pytest each time.

A project with 20 tests and 16 candidates (half pass, half fail one or more tests); every candidate
runs all 20 tests, nothing stops early. Overhead per candidate = wall time / 16 minus the tests'
own time as pytest measured it (setup + call + teardown). Both paths use the same bubblewrap
sandbox, limits and report pipe, and the same split per candidate: a judge process runs the tests,
a separate executor process (another uid) runs the candidate's function, each call forwarded
(verify/worker/); ``fresh`` starts a new sandbox and a new Python that imports pytest for every
candidate, ``warm`` forks both from a worker that imported pytest once. Measured side by side in one run, both sequentially (latency) and two at
a time (throughput on the 2 cores); the headline figures are the parallel ones.

The project's tests run under their own interpreter, as a user's would: by default a venv with
pytest alone (made once under the bench cache), not budgetpass's dev venv, whose extra pytest
plugins (pytest-lsp alone imports for ~360 ms) would inflate both paths' start-up.

    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/verify.py [--python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from budgetpass.generation import models
from budgetpass.verify import sandbox
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.session import run_each

RESULTS = Path(__file__).resolve().parent / "results"
N_CANDIDATES = 16

MODULE = '''"""Small text helpers (the benchmark's project)."""


def normalize(text):
{body}


def words(text):
    return normalize(text).split()
'''
BODIES = [
    "    return ' '.join(text.lower().split())",
    "    return ' '.join(part for part in text.lower().split())",
    "    parts = text.lower().split()\n    return ' '.join(parts)",
    "    return ' '.join(text.split()).lower()",
    "    return text.lower().strip()",  # keeps inner runs of spaces
    "    return ' '.join(text.split())",  # keeps case
    "    return text.lower()",
    "    return ' '.join(text.lower().split(' '))",
]
CASES = [("Hello  World", "hello world"), ("  a b ", "a b"), ("", ""), ("X", "x"),
         ("tab\there", "tab here"), ("new\nline", "new line"), ("MiXeD CaSe", "mixed case"),
         ("a  b  c", "a b c"), ("  ", ""), ("one", "one")]


def make_project(root: Path) -> Path:
    project = root / "proj"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
    (project / "textutil.py").write_text(MODULE.format(body="    raise NotImplementedError"))
    tests = ["import pytest\n", "from textutil import normalize, words\n\n"]
    tests.append(f"@pytest.mark.parametrize('text, expected', {CASES!r})\n")
    tests.append("def test_normalize(text, expected):\n    assert normalize(text) == expected\n\n")
    for i, (text, expected) in enumerate(CASES):
        tests.append(f"def test_words_{i}():\n    assert words({text!r}) == {expected.split()!r}\n\n")
    (project / "tests" / "test_textutil.py").write_text("".join(tests))
    return project


def overhead_ms(runs, wall: float) -> float:
    return 1000 * (wall - sum(r.test_seconds for r in runs)) / len(runs)


def plain_pytest_python() -> str:
    """A venv holding only pytest (the version budgetpass runs with), made once."""
    import pytest

    venv = models.cache_dir().parent / "bench" / f"pytest-{pytest.__version__}-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", f"pytest=={pytest.__version__}"], check=True)
    return str(python)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", help="interpreter for the project's tests (default: a venv "
                        "with pytest alone)")
    python = parser.parse_args().python or plain_pytest_python()
    info = sandbox.probe("auto")
    limits = sandbox.Limits(wall_seconds=30)
    candidates = [MODULE.format(body=BODIES[i % len(BODIES)]) for i in range(N_CANDIDATES)]
    node_ids = ("tests/test_textutil.py",)
    result: dict = {"sandbox": info.kind, "candidates": N_CANDIDATES, "python": python,
                    "load_average_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="budgetpass-bench-") as tmp:
        project = make_project(Path(tmp))
        for parallel in (1, 2):
            start = time.monotonic()
            with WarmWorker(project, info, limits, python, parallel=parallel) as worker:
                started = time.monotonic()
                warm_runs = run_each(worker, "textutil.py", candidates, node_ids)
                warm_wall = time.monotonic() - started
                ready = worker.ready_seconds
            warm_total = time.monotonic() - start

            def fresh(candidate):  # a cold Python and a fresh sandbox per candidate
                with WarmWorker(project, info, limits, python, parallel=1, warm=False) as cold:
                    return run_each(cold, "textutil.py", [candidate], node_ids)[0]

            started = time.monotonic()
            with ThreadPoolExecutor(parallel) as pool:
                fresh_runs = list(pool.map(fresh, candidates))
            fresh_wall = time.monotonic() - started
            for runs in (warm_runs, fresh_runs):
                assert all(len(r.outcomes) == 20 for r in runs), [r.summary() for r in runs]
            assert [r.passed for r in warm_runs] == [r.passed for r in fresh_runs]
            result[f"parallel_{parallel}"] = {
                "warm_overhead_ms": round(overhead_ms(warm_runs, warm_wall), 1),
                "fresh_overhead_ms": round(overhead_ms(fresh_runs, fresh_wall), 1),
                "warm_overhead_with_startup_ms": round(overhead_ms(warm_runs, warm_total), 1),
                "worker_startup_ms": round(1000 * ready, 1),
                "tests_own_ms_per_candidate": round(
                    1000 * statistics.mean(r.test_seconds for r in warm_runs), 2),
                "passing": sum(r.passed for r in warm_runs),
            }
            print(f"parallel={parallel}: {result[f'parallel_{parallel}']}", flush=True)
    head = result["parallel_2"]
    result["summary"] = {
        "warm_overhead_ms": head["warm_overhead_ms"],
        "fresh_overhead_ms": head["fresh_overhead_ms"],
        "fresh_over_warm": round(head["fresh_overhead_ms"] / head["warm_overhead_ms"], 2),
        "goal_ms": 40,
        "sequential_warm_overhead_ms": result["parallel_1"]["warm_overhead_ms"],
        "sequential_fresh_overhead_ms": result["parallel_1"]["fresh_overhead_ms"],
        # The machine is shared: a high load inflates both figures.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(f"warm {head['warm_overhead_ms']} ms vs fresh {head['fresh_overhead_ms']} ms per "
          f"candidate: fresh/warm = {result['summary']['fresh_over_warm']}x")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "verify.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
