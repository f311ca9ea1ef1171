"""How much of the file to show the model for a whole-body hole: pass counts per prompt variant.

Samples k candidates per function with Qwen2.5-Coder 0.5B under each variant and runs every
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
from budgetpass.generation.engine import load_model
from budgetpass.generation.types import SamplingParams
from budgetpass.verify import sandbox
from budgetpass.verify.discovery import find_tests
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.session import run_each

REPO = Path(__file__).resolve().parents[1]

def variants(text: str, function: str):
    """name -> (context text, template, include_suffix)."""
    trimmed = source.without_stub_bodies(text, keep=function)
    return {
        "fim_file_suffix_with_stubs": (text, prompts.QWEN_CODER, True),
        "fim_file_suffix_no_stubs": (trimmed, prompts.QWEN_CODER, True),
        "fim_empty_suffix_no_stubs (default)": (trimmed, prompts.QWEN_CODER, False),
        "left_to_right_no_stubs": (trimmed, prompts.LEFT_TO_RIGHT, False),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    model = load_model(models.resolve("qwen2.5-coder-0.5b").path)
    info = sandbox.probe()
    example = REPO / "examples" / "textkit"
    shop = REPO / "examples" / "shop"
    tasks = [(shop, "shop/prices.py", "apply_discount")] + [
        (example, "textkit/text.py", f) for f in ("slugify", "chunk", "reading_time")]
    table: dict[str, dict[str, dict[str, int]]] = {}
    start = time.time()
    for root, rel, function in tasks:
        text = (root / rel).read_text()
        site = source.locate_function(text, function)
        tests = find_tests(root, function).node_ids
        for name, (context, template, with_suffix) in variants(text, function).items():
            prompt = prompts.body_prompt(context, source.locate_function(context, function),
                                         template, include_suffix=with_suffix)
            counts = table.setdefault(name, {}).setdefault(function, {"samples": 0, "usable": 0,
                                                                      "passed": 0})
            for seed in args.seeds:
                result = model.generate(prompt.text, args.k, SamplingParams(
                    max_tokens=256, stop=prompt.stops, seed=seed))
                for c in result.completions:
                    counts["samples"] += 1
                    body = source.normalize_body(c.text, site)
                    if not body.strip() or source.is_stub(body):
                        continue
                    counts["usable"] += 1
                    with WarmWorker(root, info, sandbox.Limits(wall_seconds=20), sys.executable,
                                    parallel=1, warm=False) as worker:
                        run = run_each(worker, rel, [source.splice_body(text, site, body)],
                                       tests)[0]
                    counts["passed"] += run.passed
            print(f"{function:15} {name:38} {counts}", flush=True)
    summary = {}
    for name, per_function in table.items():
        samples = sum(c["samples"] for c in per_function.values())
        summary[name] = {"pass_rate": round(sum(c["passed"] for c in per_function.values())
                                            / samples, 3),
                         "usable_rate": round(sum(c["usable"] for c in per_function.values())
                                              / samples, 3)}
    print("\nvariant                                pass rate  usable rate")
    for name, row in summary.items():
        print(f"{name:38} {row['pass_rate']:9.3f}  {row['usable_rate']:11.3f}")
    out = REPO / "bench" / "results" / "prompt_context.json"
    out.write_text(json.dumps({
        "summary": summary,
        "per_function": table,
        "config": {"model": "qwen2.5-coder-0.5b", "k": args.k, "seeds": args.seeds,
                   "temperature": 0.8, "top_p": 0.95, "max_tokens": 256},
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "seconds": round(time.time() - start, 1),
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
