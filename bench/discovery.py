"""Test discovery on a large real project: the old full scan per call vs the project index.

The project is sympy 1.13.3 from its sdist (604 test files, ~745k lines of Python), fetched once
with pip into the bench cache (outside the repository) and unpacked there. Measured side by side in
one run, under the same load:

- ``full_scan``: ``find_tests`` as it was before the index (read back from git at ``--old-commit``,
  unchanged): every call parses every test file, and the conftests again per test file;
- ``cold``: a first index build (no disk cache), then a build from the disk cache (a second CLI run);
- ``warm``: a lookup with the index current (the language server, told of changes by the editor);
- ``stat walk``: a lookup that first checks mtimes (the CLI, and the server without file events);
- ``after change``: one test file modified (a test naming the target added), ``changed([path])``,
  then the lookup; the file is restored after.

The index must select the same tests as the full scan, before and after the change.

    nice .venv/bin/python bench/discovery.py [--project DIR] [--old-commit SHA]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from budgetpass.verify.index import ProjectIndex

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
OLD_COMMIT = "2d03d2e"  # main before the index: find_tests re-parsed every test file per call
SYMPY = "sympy==1.13.3"
TARGETS = [  # (file, function): a top-level function, a method, a widely used helper
    ("sympy/core/intfunc.py", "igcd"),
    ("sympy/polys/polytools.py", "Poly.degree"),
    ("sympy/utilities/iterables.py", "partitions"),
]
CHANGED_TEST = "sympy/utilities/tests/test_iterables.py"
WARM_REPEATS = 20


def bench_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "budgetpass-bench"


def fetch_sdist(spec: str) -> Path:
    """A pinned sdist (``name==version``), fetched with pip once and unpacked in the bench cache
    (outside the repository); its root folder."""
    key = spec.replace("==", "-")
    marker = bench_cache() / "sdists" / f"{key}.root"
    if marker.exists() and Path(marker.read_text()).is_dir():
        return Path(marker.read_text())
    downloads = bench_cache() / "downloads" / key
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                    ":all:", spec, "-d", str(downloads)], check=True)
    [archive] = downloads.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(bench_cache(), filter="data")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(bench_cache() / top))
    return bench_cache() / top


def fetch_sympy() -> Path:
    folder = bench_cache() / "sympy-1.13.3"
    return folder if (folder / "sympy").is_dir() else fetch_sdist(SYMPY)


def old_discovery(commit: str):
    """``verify/discovery.py`` as it was at ``commit``, imported as its own module."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:verify/discovery.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="budgetpass-old-")) / "old_discovery.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("budgetpass_old_discovery", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="default: sympy 1.13.3 in the bench cache")
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    args = parser.parse_args(argv)
    root = (args.project or fetch_sympy()).absolute()
    old = old_discovery(args.old_commit)
    os.environ["BUDGETPASS_CACHE"] = tempfile.mkdtemp(prefix="budgetpass-bench-cache-")
    test_files = sum(1 for _ in old.iter_test_files(root))
    print(f"{root}: {test_files} test files")

    full = {}
    for rel, name in TARGETS:
        found, seconds = timed(lambda n=name, r=rel: old.find_tests(root, n, target_file=root / r))
        full[name] = {"seconds": seconds, "node_ids": list(found.node_ids)}
        print(f"full scan  {name:<14} {seconds:7.2f} s  {len(found.node_ids)} tests")

    index = ProjectIndex(root)
    _, cold = timed(index.refresh)
    parsed = index.parsed
    print(f"cold index build         {cold:7.2f} s  ({parsed} files parsed)")
    cached = ProjectIndex(root)
    _, cold_cached = timed(cached.refresh)
    print(f"build from disk cache    {cold_cached:7.2f} s  ({cached.parsed} files parsed)")

    index.watched = True
    answers, warm = {}, {}
    for rel, name in TARGETS:
        answers[name] = index.find_tests(name, target_file=root / rel)  # the target's functions
        times = [timed(lambda n=name, r=rel: index.find_tests(n, target_file=root / r))[1]
                 for _ in range(WARM_REPEATS)]
        warm[name] = statistics.median(times) * 1000
        print(f"warm lookup {name:<14} {warm[name]:7.2f} ms")
    same_before = {name: list(answers[name].node_ids) == full[name]["node_ids"]
                   for _, name in TARGETS}

    index.watched = False
    walk = {name: timed(lambda n=name, r=rel: index.find_tests(n, target_file=root / r))[1] * 1000
            for rel, name in TARGETS}
    for name, ms in walk.items():
        print(f"stat walk + lookup {name:<7} {ms:7.2f} ms")
    index.watched = True

    changed_path = root / CHANGED_TEST
    original = changed_path.read_bytes()
    rel, name = TARGETS[2]
    added = "\n\ndef test_budgetpass_bench_added():\n    assert list(partitions(2))\n"
    try:
        changed_path.write_bytes(original + added.encode())
        start = time.perf_counter()
        index.changed([changed_path])
        after = index.find_tests(name, target_file=root / rel)
        after_change = (time.perf_counter() - start) * 1000
        print(f"after a change {name:<10} {after_change:7.2f} ms")
        full_after, full_after_s = timed(lambda: old.find_tests(root, name, target_file=root / rel))
        new_id = f"{CHANGED_TEST}::test_budgetpass_bench_added"
        same_after = after.node_ids == full_after.node_ids and new_id in after.node_ids
    finally:
        changed_path.write_bytes(original)
        index.changed([changed_path])
    restored = index.find_tests(name, target_file=root / rel).node_ids
    same_restored = list(restored) == full[name]["node_ids"]
    same = all(same_before.values()) and same_after and same_restored

    full_scan_s = statistics.mean(f["seconds"] for f in full.values())
    warm_ms = max(warm.values())
    summary = {
        "cold_s": round(cold, 3),
        "cold_from_disk_cache_s": round(cold_cached, 3),
        "warm_lookup_ms": round(warm_ms, 3),
        "stat_walk_lookup_ms": round(max(walk.values()), 3),
        "after_change_ms": round(after_change, 3),
        "full_scan_s": round(full_scan_s, 3),
        "full_scan_over_warm_lookup": round(full_scan_s * 1000 / warm_ms, 1),
        "same_tests": same,
        "goals_met": warm_ms <= 50 and after_change <= 300 and same,
    }
    data = {
        "summary": summary,
        "project": {"name": SYMPY, "path": str(root), "test_files": test_files},
        "old_commit": args.old_commit,
        "targets": [{"file": rel, "function": name, "tests": len(full[name]["node_ids"]),
                     "full_scan_s": round(full[name]["seconds"], 3),
                     "warm_lookup_ms": round(warm[name], 3),
                     "stat_walk_lookup_ms": round(walk[name], 3),
                     "same_as_full_scan": same_before[name]} for rel, name in TARGETS],
        "after_change": {"file": CHANGED_TEST, "function": name, "ms": round(after_change, 3),
                         "same_as_full_scan": same_after, "full_scan_s": round(full_after_s, 3),
                         "restored_same": same_restored},
        "machine": {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0],
                    "python": sys.version.split()[0]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "discovery.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
