"""Why k = 8 costs what it does on this CPU: llama.cpp's decode-step time for k sequences.

The batched sampler (bench/sampling.py) decodes one token for each of k sequences per step; its
k = 8 / k = 1 time cannot be lower than the ratio of one step's cost here. This times bare
``llama_decode`` steps (no sampling, no Python per token) for k = 1 .. 16 sequences over a shared
100-token prompt, for the shipped 0.5B GGUF with and without llama.cpp's CPU weight repacking, and
for copies requantized to Q8_0 and Q4_0 (made in a temporary folder, never shipped), side by side in
one run. Writes bench/results/decode_steps.json.

    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/decode_steps.py
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from budgetpass.generation import models
from budgetpass.generation.backends.llamacpp import _llama

RESULTS = Path(__file__).resolve().parent / "results" / "decode_steps.json"
PROMPT_TOKENS = 100
STEPS = 12


def step_times(lib, path: Path, repack: bool, ks: list[int], threads: int) -> dict[int, float]:
    """Median milliseconds of one decode step of k sequences, for each k."""
    params = lib.llama_model_default_params()
    params.use_extra_bufts = repack
    model = lib.llama_model_load_from_file(str(path).encode(), params)
    cp = lib.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = 4096, 512, 512, max(ks)
    cp.n_threads = cp.n_threads_batch = threads
    cp.kv_unified = True
    ctx = lib.llama_init_from_model(model, cp)
    mem = lib.llama_get_memory(ctx)
    batch = lib.llama_batch_init(512, 0, 1)
    times = {}
    try:
        for k in ks:
            lib.llama_memory_clear(mem, True)
            batch.n_tokens = PROMPT_TOKENS
            for j in range(PROMPT_TOKENS):
                batch.token[j], batch.pos[j], batch.n_seq_id[j] = 100 + j, j, 1
                batch.seq_id[j][0], batch.logits[j] = 0, j == PROMPT_TOKENS - 1
            lib.llama_decode(ctx, batch)
            for s in range(1, k):
                lib.llama_memory_seq_cp(mem, 0, s, -1, -1)
            samples = []
            for step in range(STEPS):
                batch.n_tokens = k
                for j in range(k):
                    batch.token[j], batch.pos[j], batch.n_seq_id[j] = 500 + j, PROMPT_TOKENS + step, 1
                    batch.seq_id[j][0], batch.logits[j] = j, True
                start = time.perf_counter()
                if lib.llama_decode(ctx, batch) != 0:
                    raise RuntimeError(f"llama_decode failed for k={k}")
                samples.append((time.perf_counter() - start) * 1000)
            times[k] = round(statistics.median(samples[2:]), 2)  # the first steps warm caches
    finally:
        lib.llama_batch_free(batch)
        lib.llama_free(ctx)
        lib.llama_model_free(model)
    return times


def requantize(lib, source: Path, ftype: int, out: Path) -> Path:
    params = lib.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = ftype, True, os.cpu_count() or 1
    if lib.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params)):
        raise RuntimeError(f"could not requantize {source} to {out.name}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    lib = _llama()
    lib.llama_backend_init()
    shipped = models.resolve(args.model).path
    rows = {}
    with tempfile.TemporaryDirectory(prefix="budgetpass-requant-") as tmp:
        variants = [
            ("shipped Q4_K_M, repacked (default)", shipped, True),
            ("shipped Q4_K_M, not repacked", shipped, False),
            ("requantized Q8_0", requantize(lib, shipped, lib.LLAMA_FTYPE_MOSTLY_Q8_0,
                                            Path(tmp) / "q8_0.gguf"), True),
            ("requantized Q4_0, repacked", requantize(lib, shipped, lib.LLAMA_FTYPE_MOSTLY_Q4_0,
                                                      Path(tmp) / "q4_0.gguf"), True),
        ]
        print(f"{args.model}: median ms per decode step of k sequences ({args.threads} threads, "
              f"{PROMPT_TOKENS}-token shared prompt)")
        print(f"{'variant':38}" + "".join(f"{'k=' + str(k):>8}" for k in args.ks) + f"{'k8/k1':>8}")
        for name, path, repack in variants:
            times = step_times(lib, path, repack, args.ks, args.threads)
            ratio = round(times[8] / times[1], 2) if 8 in times and 1 in times else None
            rows[name] = {"step_ms": times, "k8_over_k1": ratio}
            print(f"{name:38}" + "".join(f"{times[k]:>8.1f}" for k in args.ks) + f"{ratio:>8.2f}")
    summary = {"shipped_k8_over_k1_step": rows["shipped Q4_K_M, repacked (default)"]["k8_over_k1"],
               "best_k8_over_k1_step": min(r["k8_over_k1"] for r in rows.values()),
               "sampling_goal_k8_over_k1": 3.0,
               "load_average_1min": round(os.getloadavg()[0], 2)}
    result = {"summary": summary, "model": args.model, "threads": args.threads,
              "prompt_tokens": PROMPT_TOKENS, "variants": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("summary:", json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
