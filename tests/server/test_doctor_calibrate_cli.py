"""`budgetpass doctor` and `budgetpass calibrate`."""

import json

import pytest
from budgetpass.generation import models
from budgetpass.server.cli import main


def test_doctor_says_which_backend_and_why(capsys, monkeypatch):
    monkeypatch.delenv("BUDGETPASS_BACKEND", raising=False)
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"]["name"] in ("llama.cpp", "vllm") and report["backend"]["reason"]
    assert {m["name"] for m in report["models"]} == set(models.REGISTRY)
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.startswith(f"backend: {report['backend']['name']} (")


def test_doctor_refuses_an_unknown_backend(capsys):
    assert main(["doctor", "--backend", "tpu"]) == 2
    assert "unknown backend" in capsys.readouterr().err


@pytest.mark.slow
def test_calibrate_measures_once_then_uses_the_cache(smol_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path / "models")
    target = str(smol_path)
    assert main(["calibrate", target, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["prefill_tokens_per_second"] > 0
    assert set(first["decode_step_seconds"]) == {"1", "4", "8"}
    assert (tmp_path / "calibration.json").is_file()
    assert main(["calibrate", target]) == 0
    out = capsys.readouterr()
    assert "cached" in out.err and "prefill" in out.out
