"""Whole-body prompts on the example projects: pass counts per prompt style (build_prompt).

Samples k candidates per function with Qwen2.5-Coder 0.5B in each style and runs every
candidate through the project's selected tests in the sandbox (the product's own path).
Writes bench/results/prompt_context.json.

    .venv/bin/python bench/prompt_context.py [--k 8] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from budgetpass.generation import models, prompts, source
from budgetpass.generation.backends import open_llamacpp
from budgetpass.generation.prompts import template_for
from budgetpass.generation.types import SamplingParams
from budgetpass.verify import sandbox
from budgetpass.verify.discovery import find_tests
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.session import run_each

REPO = Path(__file__).resolve().parents[1]

# The examples' functions whose project has tests for them (textkit's initials has none).
FUNCTIONS = [("shop", "shop/prices.py", "apply_discount")] + [
    ("textkit", "textkit/text.py", f) for f in ("slugify", "chunk", "reading_time")]
MODEL = "qwen2.5-coder-0.5b"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    model = open_llamacpp(models.resolve(MODEL).path)
    prompt_info = prompts.model_prompt_info(model, MODEL, template_for(model))
    sandbox_info = sandbox.probe()
    table: dict[str, dict[str, dict]] = {}
    resolved: dict[str, str] = {}
    start = time.time()
    for project, rel, function in FUNCTIONS:
        root = REPO / "examples" / project
        text = (root / rel).read_text()
        site = source.locate_function(text, function)
        tests = find_tests(root, function).node_ids
        if not tests:
            raise SystemExit(f"{rel}::{function}: its project has no tests for it")
        request = prompts.BodyRequest(text, function, root / rel, root)
        built = {name: prompts.build_prompt(request, prompt_info, name)
                 for name in prompts.PROMPT_STYLES}
        with WarmWorker(root, sandbox_info, sandbox.Limits(wall_seconds=20), sys.executable,
                        parallel=1) as worker:
            for name, prompt in built.items():
                if name == "auto":  # the prompt of the style it resolves to: its counts
                    resolved[function] = prompt.style
                    continue
                counts = table.setdefault(name, {}).setdefault(function, {
                    "samples": 0, "usable": 0, "passed": 0, "tokens": 0,
                    "prompt_tokens": 0})
                for seed in args.seeds:
                    result = model.generate(prompt.text, args.k, SamplingParams(
                        max_tokens=256, stop=prompt.stops, seed=seed))
                    counts["prompt_tokens"] = result.prompt_tokens
                    bodies = []
                    for c in result.completions:
                        counts["samples"] += 1
                        counts["tokens"] += c.token_count
                        body = source.normalize_body(c.text, site)
                        if body.usable:
                            bodies.append(source.splice_body(text, site, body.text))
                    counts["usable"] += len(bodies)
                    runs = run_each(worker, rel, bodies, tests) if bodies else []
                    counts["passed"] += sum(bool(run and run.passed) for run in runs)
                print(f"{function:15} {name:6} {counts}", flush=True)
    for function, style in resolved.items():
        table.setdefault("auto", {})[function] = table[style][function]
    summary = {}
    for name, per_function in table.items():
        samples = sum(c["samples"] for c in per_function.values())
        summary[name] = {
            "pass_rate": round(sum(c["passed"] for c in per_function.values()) / samples, 3),
            "usable_rate": round(sum(c["usable"] for c in per_function.values()) / samples, 3),
            "mean_tokens": round(sum(c["tokens"] for c in per_function.values()) / samples, 1)}
    summary["auto_is"] = sorted(set(resolved.values()))
    print("\nstyle   pass rate  usable rate  mean tokens")
    for name in prompts.PROMPT_STYLES:
        row = summary[name]
        print(f"{name:6} {row['pass_rate']:10.3f}  {row['usable_rate']:11.3f}  "
              f"{row['mean_tokens']:11.1f}")
    out = REPO / "bench" / "results" / "prompt_context.json"
    out.write_text(json.dumps({
        "summary": summary,
        "per_function": table,
        "config": {"model": MODEL, "k": args.k, "seeds": args.seeds,
                   "temperature": SamplingParams().temperature, "top_p": SamplingParams().top_p,
                   "max_tokens": 256, "tests": "each project's own, found by find_tests, run "
                   "by verify.session.run_each in one warm sandboxed worker per function"},
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "seconds": round(time.time() - start, 1),
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
