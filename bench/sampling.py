"""Wall time of k candidates: one batched llama.cpp request vs k sequential requests, side by side.

Same model, prompt and sampler for every row. Each candidate decodes exactly ``--max-tokens``
tokens (``ignore_eos``), so the rows differ only in how the work is scheduled:

- batched: one ``generate(prompt, k)`` (prompt evaluated once, k sequences decoded per step);
- sequential: k ``generate(prompt, 1)`` calls, the prompt evaluated again for each
  (``reset()`` between calls: what a client without a prompt cache pays);
- sequential, prompt cached: k calls that reuse the previous prompt's KV (only its last token
  is evaluated again), like llama.cpp's own prompt cache.

Also measures prefix reuse: a second request whose prompt extends the first by a few tokens, as a
fraction of the first request's prompt evaluation time.

Writes bench/results/sampling.json (top-level "summary").

    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/sampling.py [--ks 1 4 8 16] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

from budgetpass.generation import models, prompts
from budgetpass.generation.backends.llamacpp import LlamaCppModel
from budgetpass.generation.backends.vllm import separate_vllm_python
from budgetpass.generation.types import SamplingParams

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "textkit" / "textkit" / "text.py"
GOAL_K8_OVER_K1 = 3.0


def bench_prompt(function: str = "reading_time", path: Path = DEMO) -> str:
    """The product's own FIM prompt for a function (the same text every row)."""
    return prompts.build_prompt(prompts.BodyRequest(path.read_text(), function),
                                prompts.ModelPromptInfo("qwen2.5-coder", prompts.QWEN_CODER),
                                "fim").text


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batched(model: LlamaCppModel, prompt: str, k: int, params: SamplingParams) -> float:
    model.reset()
    return timed(lambda: model.generate(prompt, k, params))


def sequential(model: LlamaCppModel, prompt: str, k: int, params: SamplingParams,
               cached: bool) -> float:
    model.reset()
    total = 0.0
    for i in range(k):
        if not cached:
            model.reset()
        one = SamplingParams(**{**params.__dict__, "seed": params.seed + i})
        total += timed(lambda one=one: model.generate(prompt, 1, one))
    return total


def prefix_reuse(model: LlamaCppModel, prompt: str, reps: int) -> dict:
    """Prompt-evaluation time of an extended prompt after the original, vs the original cold."""
    extension = "    selected = []\n"
    params = SamplingParams(temperature=0, max_tokens=1)
    firsts, seconds, reused = [], [], []
    for _ in range(reps):
        model.reset()
        first = model.generate(prompt, 1, params)
        second = model.generate(prompt + extension, 1, params)
        firsts.append(first.prompt_seconds)
        seconds.append(second.prompt_seconds)
        reused.append(second.cached_prompt_tokens)
    first_s, second_s = statistics.median(firsts), statistics.median(seconds)
    return {
        "first_prompt_tokens": first.prompt_tokens,
        "second_prompt_tokens": second.prompt_tokens,
        "second_reused_tokens": min(reused),
        "first_prompt_seconds": round(first_s, 4),
        "second_prompt_seconds": round(second_s, 4),
        "fraction": round(second_s / first_s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=2, help="batched runs per k (median)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-sequential", action="store_true", help="batched rows only")
    parser.add_argument("--vllm-python", type=Path, default=separate_vllm_python(),
                        help="interpreter of a venv with vllm(-cpu), default the one `make vllm` "
                        "makes: also time k = 1 vs 8 through the vLLM backend, in the same run")
    parser.add_argument("--no-vllm", action="store_true", help="llama.cpp rows only")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sampling.json")
    args = parser.parse_args()

    resolved = models.resolve(args.model)
    model = LlamaCppModel(resolved.path, n_threads=args.threads)
    prompt = bench_prompt()
    params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, seed=0,
                            ignore_eos=True)
    n_prompt = len(model.tokenize(prompt))
    model.generate(prompt, max(args.ks), SamplingParams(max_tokens=4))  # warm-up: sizes the KV

    rows = {k: {"k": k} for k in args.ks}
    batched_runs = {k: [] for k in args.ks}
    for _ in range(args.reps):  # interleaved, so a busy neighbour slows every k alike
        for k in args.ks:
            batched_runs[k].append(batched(model, prompt, k, params))
    for k, row in rows.items():
        row["batched_s"] = statistics.median(batched_runs[k])
        if not args.no_sequential:
            row["sequential_s"] = sequential(model, prompt, k, params, cached=False)
            row["sequential_cached_prompt_s"] = sequential(model, prompt, k, params, cached=True)
        print(f"k={k:2d} done: {row}", flush=True)
    rows = list(rows.values())
    base = next(r for r in rows if r["k"] == 1)["batched_s"] if 1 in args.ks else None
    print(f"\n{args.model}, prompt {n_prompt} tokens, {args.max_tokens} new tokens per candidate, "
          f"{args.threads} threads")
    print(f"{'k':>3} {'batched s':>10} {'x k=1':>7} {'seq s':>8} {'x k=1':>7} "
          f"{'seq+cache s':>12} {'x k=1':>7}")
    for row in rows:
        for key in ("batched_s", "sequential_s", "sequential_cached_prompt_s"):
            if key in row and base:
                row[key.replace("_s", "_over_k1")] = round(row[key] / base, 3)
            if key in row:
                row[key] = round(row[key], 3)
        print(f"{row['k']:>3} {row['batched_s']:>10.2f} {row.get('batched_over_k1', 0):>7.2f} "
              f"{row.get('sequential_s', 0):>8.2f} {row.get('sequential_over_k1', 0):>7.2f} "
              f"{row.get('sequential_cached_prompt_s', 0):>12.2f} "
              f"{row.get('sequential_cached_prompt_over_k1', 0):>7.2f}")

    # A typical request: a function near the end of a real ~100-line module, ~50-token bodies.
    module_prompt = bench_prompt("find_tests", REPO / "verify" / "discovery.py")
    typical_params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=48, ignore_eos=True)
    typical_runs = {1: [], 8: []}
    for _ in range(3):
        for k, runs in typical_runs.items():
            runs.append(batched(model, module_prompt, k, typical_params))
    typical = {
        "prompt_tokens": len(model.tokenize(module_prompt)),
        "new_tokens_per_candidate": 48,
        "k1_s": round(statistics.median(typical_runs[1]), 3),
        "k8_s": round(statistics.median(typical_runs[8]), 3),
    }
    typical["k8_over_k1"] = round(typical["k8_s"] / typical["k1_s"], 3)
    print(f"\ntypical request ({typical['prompt_tokens']}-token module prompt, 48 new tokens): "
          f"k=1 {typical['k1_s']:.2f} s, k=8 {typical['k8_s']:.2f} s = {typical['k8_over_k1']:.2f}x")

    reuse = prefix_reuse(model, module_prompt, reps=3)
    print(f"\nprefix reuse: +{reuse['second_prompt_tokens'] - reuse['first_prompt_tokens']} "
          f"tokens after a {reuse['first_prompt_tokens']}-token prompt: "
          f"{reuse['second_prompt_seconds'] * 1000:.1f} ms vs {reuse['first_prompt_seconds'] * 1000:.1f}"
          f" ms cold = {reuse['fraction']:.3f} (goal <= 0.20)")

    vllm = None
    vllm_reason = ("not measured: --no-vllm" if args.no_vllm else
                   "not measured: no vLLM venv (`make vllm` makes .venv-vllm; or --vllm-python)")
    if args.vllm_python and not args.no_vllm:
        del model  # free the CPU memory and threads for vLLM
        proc = subprocess.run(
            [str(args.vllm_python), str(REPO / "bench" / "vllm_sampling.py"), "--gguf",
             args.model, "--max-tokens", str(args.max_tokens), "--ks", "1", "8", "--out", "-"],
            capture_output=True, text=True, timeout=1200, check=False,
            env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")})
        try:
            vllm = json.loads(next(line for line in reversed(proc.stdout.splitlines())
                                   if line.startswith('{"engine_start_seconds"')))
            print("\nvLLM (same prompt, same k=1/8):", json.dumps(vllm["rows"]))
        except (StopIteration, ValueError, KeyError):
            vllm_reason = f"vLLM run failed (exit {proc.returncode}): {proc.stderr[-1500:]}"
            print(vllm_reason)
    vllm_k8 = next((r["batched_over_k1"] for r in vllm["rows"] if r["k"] == 8), None) \
        if vllm else None

    k8 = next((r for r in rows if r["k"] == 8), None)
    k8_ratio = k8.get("batched_over_k1") if k8 else None
    summary = {
        "llamacpp_k8_over_k1": k8_ratio,
        "llamacpp_k8_over_k1_goal": GOAL_K8_OVER_K1,
        "llamacpp_k8_meets_goal": None if k8_ratio is None else k8_ratio <= GOAL_K8_OVER_K1,
        "llamacpp_sequential_k8_over_k1": k8.get("sequential_over_k1") if k8 else None,
        "llamacpp_typical_request_k8_over_k1": typical["k8_over_k1"],
        "vllm_k8_over_k1": vllm_k8,
        "vllm_k8_over_k1_reason": None if vllm_k8 is not None else vllm_reason,
        "prefix_reuse_fraction": reuse["fraction"],
    }
    print("\nsummary:", json.dumps(summary))
    result = {
        "summary": summary,
        "model": resolved.name,
        "prompt_tokens": n_prompt,
        "new_tokens_per_candidate": args.max_tokens,
        "sampling": {"temperature": 0.8, "top_p": 0.95, "ignore_eos": True},
        "threads": args.threads,
        "batched_reps": args.reps,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_end": list(os.getloadavg())},
        "rows": rows,
        "typical_request": typical,
        "prefix_reuse": reuse,
        "vllm_cpu": vllm,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
