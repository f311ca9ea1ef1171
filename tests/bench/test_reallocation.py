"""Smoke run of `budgetpass bench reallocation` with real models (SmolLM2-135M as the small model,
Qwen2.5-Coder 0.5B as the reference, to stay quick), then a re-score from the cache alone."""

import json

import pytest
from budgetpass.bench import rankers
from budgetpass.bench.reallocation import ReallocationConfig, run
from budgetpass.server import cli

pytestmark = pytest.mark.slow

SMOKE = {"small": "smollm2-135m", "large": "qwen2.5-coder-0.5b", "n_small": 2, "n_large": 2,
         "budgets": (1, 2), "limit": 5, "max_tokens": 128, "test_timeout": 3.0}


def test_smoke_run_then_bit_exact_rescore(tmp_path, smol_path, qwen_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    first = run(ReallocationConfig(**SMOKE), cache, out, name="smoke")
    summary = first["summary"]
    assert summary["tasks"] == 5
    assert first["run"]["generated_requests"] == 5 * 4  # sampled + greedy, two models
    for metric in ("flops", "time"):
        for b in ("1", "2"):
            entry = first["budgets"][metric][b]
            # every ranker but the reviewer's, which needs scores a smoke run does not store
            assert set(entry["small_ranked"]) == {
                name for name, ranker in rankers.RANKERS.items() if not ranker.needs_reviewer}
            assert 1 <= entry["k_small"] <= 2
            for value in [entry["large"], entry["small_tested"], *entry["small_ranked"].values()]:
                assert 0.0 <= value <= 1.0
            # the hidden tests as selector never do worse than any ranker on the same k samples
            assert all(entry["small_tested"] >= r for r in entry["small_ranked"].values())
            assert summary[metric][b]["large"] == entry["large"]
    # 135M -> 0.5B is ~3.7x the FLOPs: one reference sample buys 3, capped at n_small = 2
    assert first["budgets"]["flops"]["1"]["capped"] and first["budgets"]["flops"]["1"]["k_small"] == 2
    detail = first["tasks_detail"][0]
    assert len(detail["small"]["passed"]) == 2 and len(detail["large"]["tokens"]) == 2
    assert detail["task_id"] == "HumanEval/0" and detail["doctest_examples"] == 2
    assert first["models"]["large"]["sha256"] and first["machine"]["sandbox"]
    for suffix in (".json", ".md", ".png"):
        assert (out / f"smoke{suffix}").stat().st_size > 0
    assert "| flops | 1 |" in (out / "smoke.md").read_text()

    # Re-score through the CLI from the cache only: no model, no sandbox, identical numbers.
    code = cli.main(["bench", "reallocation", "--small", "smollm2-135m", "--large",
                     "qwen2.5-coder-0.5b", "--n-small", "2", "--n-large", "2", "--budgets", "1",
                     "2", "--limit", "5", "--max-tokens", "128", "--test-timeout", "3",
                     "--cache", str(cache), "--out", str(out), "--name", "again",
                     "--rescore-only", "-q"])
    assert code == 0
    again = json.loads((out / "again.json").read_text())
    assert again["run"]["generated_requests"] == 0 and again["run"]["sandbox_runs"] == 0
    first = json.loads((out / "smoke.json").read_text())
    strip = lambda results: {k: v for k, v in results.items() if k != "run"}
    assert json.dumps(strip(again), sort_keys=True) == json.dumps(strip(first), sort_keys=True)


def test_rescore_only_without_cache_fails_clearly(tmp_path, capsys, smol_path, qwen_path):
    code = cli.main(["bench", "reallocation", "--small", "smollm2-135m", "--large",
                     "qwen2.5-coder-0.5b", "--limit", "1", "--cache", str(tmp_path / "empty"),
                     "--out", str(tmp_path / "out"), "--rescore-only", "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no cached small generation for HumanEval/0" in err and "first 0 tasks" in err
    assert not (tmp_path / "out").exists()
