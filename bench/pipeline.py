"""Pipelined vs sequential: the same generate-and-test job, testing each candidate as soon as it
is decoded (and cancelling the decode at the first pass) against generating all, then testing.

examples/textkit's tested functions, k = 6 (a FLOPs budget of 2 reference samples), the same seeds
in both modes, run alternately in one process (the model is loaded once, before timing). Two
variants: ``first_pass`` (the default job: stop at the first candidate passing every test) and
``test_all`` (``stop_at_first_pass`` off: every candidate is decoded and tested in both modes, so
the difference is only the overlap, minus what the tests take from the decode). On a 2-core
machine the tests run on the cores the decode uses: the decode's own slowdown is reported too.

    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/pipeline.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from budgetpass.app.config import build
from budgetpass.app.solve import Request, solve

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
TEXT = ROOT / "examples" / "textkit" / "textkit" / "text.py"
FUNCTIONS = ("slugify", "chunk", "reading_time")
VARIANTS = {"first_pass": True, "test_all": False}  # name -> stop_at_first_pass


def run_once(function: str, seed: int, pipeline: bool, stop_at_first_pass: bool) -> dict:
    config = build({"budget.calls": 2.0, "sampling.seed": seed, "tests.pipeline": pipeline,
                    "tests.stop_at_first_pass": stop_at_first_pass})
    started = time.monotonic()
    report = solve(Request(TEXT, function), config)
    wall = time.monotonic() - started
    used = report.to_json()["budget_used"]
    return {"function": function, "seed": seed, "pipelined": pipeline, "status": report.status,
            "k": report.budget.samples, "wall_seconds": round(wall, 3),
            "generation_seconds": round(report.generation_seconds, 3),
            "testing_seconds": round(report.testing_seconds, 3),
            "overlap_seconds": round(report.overlap_seconds, 3),
            "generated_tokens": used["tokens"], "not_decoded": used["cancelled"],
            "tested": sum(c.run is not None for c in report.candidates)}


def ratio(runs: list[dict], key: str) -> float:
    """Sum over the pipelined runs / sum over the same sequential runs."""
    piped = sum(r[key] for r in runs if r["pipelined"])
    plain = sum(r[key] for r in runs if not r["pipelined"])
    return round(piped / plain, 3) if plain else float("nan")


def paired(runs: list[dict]) -> list[tuple[dict, dict]]:
    """(pipelined run, sequential run) of each function and seed."""
    by_key: dict[tuple, dict] = {}
    for r in runs:
        by_key.setdefault((r["function"], r["seed"]), {})[r["pipelined"]] = r
    return [(p[True], p[False]) for p in by_key.values() if len(p) == 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    run_once(FUNCTIONS[0], 999, True, True)  # loads the model and warms the caches: not timed
    result: dict = {"functions": list(FUNCTIONS), "seeds": args.seeds, "cpu_count": os.cpu_count(),
                    "variants": {}}
    for variant, stop in VARIANTS.items():
        runs = []
        for function in FUNCTIONS:
            for seed in range(args.seeds):
                order = (True, False) if seed % 2 == 0 else (False, True)  # alternate who goes first
                for pipeline in order:
                    run = run_once(function, seed, pipeline, stop)
                    runs.append(run)
                    print(json.dumps({"variant": variant, **run}), flush=True)
        pairs = [round(p["wall_seconds"] / q["wall_seconds"], 3) for p, q in paired(runs)]
        result["variants"][variant] = {
            "pipelined_over_sequential_wall": ratio(runs, "wall_seconds"),
            "median_pair_ratio": statistics.median(pairs),
            "pair_ratios": pairs,
            "pipelined_over_sequential_generation_seconds": ratio(runs, "generation_seconds"),
            "pipelined_over_sequential_tokens": ratio(runs, "generated_tokens"),
            "overlap_seconds_mean": round(statistics.mean(
                r["overlap_seconds"] for r in runs if r["pipelined"]), 3),
            "candidates_not_decoded": sum(r["not_decoded"] for r in runs if r["pipelined"]),
            "same_status": sum(a["status"] == b["status"] for a, b in paired(runs)),
            "runs": runs,
        }
    first, full = result["variants"]["first_pass"], result["variants"]["test_all"]
    result["summary"] = {
        "pipelined_over_sequential": first["pipelined_over_sequential_wall"],
        "pipelined_over_sequential_median_pair": first["median_pair_ratio"],
        "test_all_pipelined_over_sequential": full["pipelined_over_sequential_wall"],
        # Decode time with tests running beside it, every candidate decoded in both modes.
        "decode_slowdown_when_overlapped": full["pipelined_over_sequential_generation_seconds"],
        "tokens_saved_by_cancelling": round(1 - first["pipelined_over_sequential_tokens"], 3),
        "pairs": len(first["pair_ratios"]),
        "same_status_pairs": first["same_status"],
        "cpu_count": os.cpu_count(),
        # The machine is shared: a high load inflates both modes' times.
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    print("\n" + "\n".join(f"{k}: {v}" for k, v in result["summary"].items()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
