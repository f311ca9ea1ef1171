"""What llama.cpp's thread wait policy costs a decode that shares the CPU with test runs.

budgetpass tests a candidate while the others still decode (pipelining), so the decode rarely has
the machine to itself. llama.cpp's CPU threads (OpenMP) spin between steps by default; with one
other busy process on a 2-core machine a 2-thread decode then loses its cores for whole time
slices. This times the same greedy decode (the shipped 0.5B, 64 tokens after a 300-token prompt,
through the product's ``LlamaCppModel``) for each OpenMP wait policy and thread count, on an idle
machine and beside one CPU-bound process (standing in for a candidate's tests), side by side in
alternating rounds (each run in its own process: libgomp reads the policy once, when it loads).
Writes bench/results/decode_contention.json.

    .venv/bin/python -m budgetpass.bench.decode_contention
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "decode_contention.json"
REPO = Path(__file__).resolve().parent.parent
NEW_TOKENS = 64
POLICIES = ("ACTIVE", "PASSIVE")


def _decode_once(threads: int) -> float:
    """Seconds of one greedy 64-token decode, model loaded and warmed first (runs in a child)."""
    from budgetpass.generation import models
    from budgetpass.generation.backends.llamacpp import LlamaCppModel
    from budgetpass.generation.types import SamplingParams

    prompt = (REPO / "examples" / "textkit" / "textkit" / "text.py").read_text()
    model = LlamaCppModel(models.resolve(models.DEFAULT_MODEL).path, n_threads=threads)
    model.generate(prompt[:200], 1, SamplingParams(temperature=0, max_tokens=4))
    start = time.perf_counter()
    result = model.generate(prompt, 1, SamplingParams(temperature=0, max_tokens=NEW_TOKENS,
                                                      ignore_eos=True))
    seconds = time.perf_counter() - start
    assert result.completions[0].token_count == NEW_TOKENS
    model.close()
    return seconds


def _measure(policy: str, threads: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run([sys.executable, "-m", "budgetpass.bench.decode_contention",
                          "--child", str(threads)], env=env, capture_output=True, text=True,
                         check=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def _busy() -> subprocess.Popen:
    """One CPU-bound process, as a candidate's test run is."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.child:
        print(_decode_once(args.child))
        return 0
    configs = [(load, policy, threads) for load in ("idle", "one_busy_process")
               for policy in POLICIES for threads in sorted(set(args.threads))]
    seconds: dict[str, list[float]] = {f"{load}/{policy}/{threads}": []
                                       for load, policy, threads in configs}
    for round_ in range(args.rounds):
        for load in ("idle", "one_busy_process"):
            busy = _busy() if load != "idle" else None
            try:
                for _, policy, threads in (c for c in configs if c[0] == load):
                    value = _measure(policy, threads)
                    seconds[f"{load}/{policy}/{threads}"].append(round(value, 3))
                    print(f"round {round_ + 1} {load:16} {policy:7} {threads} threads: "
                          f"{NEW_TOKENS / value:5.1f} tok/s", flush=True)
            finally:
                if busy:
                    busy.kill()
                    busy.wait()
    median = {key: statistics.median(values) for key, values in seconds.items()}
    top = max(args.threads)

    def ratio(load: str) -> float:
        return round(median[f"{load}/ACTIVE/{top}"] / median[f"{load}/PASSIVE/{top}"], 2)

    summary = {
        "threads": top,
        "tokens_per_second": {key: round(NEW_TOKENS / value, 1) for key, value in median.items()},
        "passive_speedup_beside_a_busy_process": ratio("one_busy_process"),
        "passive_speedup_idle": ratio("idle"),
        "default_policy": "PASSIVE",
    }
    data = {"summary": summary, "seconds": seconds, "new_tokens": NEW_TOKENS,
            "rounds": args.rounds, "cpus": os.cpu_count(), "machine": platform.machine(),
            "note": "speedup = median seconds with ACTIVE / with PASSIVE (same run, alternating)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
