"""Which backend runs the model: ``backend: auto`` picks vLLM on a CUDA GPU with vllm installed,
else llama.cpp in-process; ``openai`` (a server) is only ever chosen explicitly."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass

BACKENDS = ("auto", "llama.cpp", "vllm", "openai")  # the setting's choices, defined only here


@dataclass(frozen=True)
class BackendChoice:
    name: str  # llama.cpp | vllm | openai
    reason: str
    gpu: str | None = None  # the CUDA device seen, if any

    def to_json(self) -> dict:
        return asdict(self)


def cuda_gpu() -> tuple[str | None, str]:
    """(name of the first CUDA GPU or None, how that was found out)."""
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0), "torch.cuda reports it"
            return None, "torch is installed but torch.cuda.is_available() is False"
        except Exception as exc:  # a broken torch install must not break the CPU path
            return None, f"torch could not be queried ({exc.__class__.__name__}: {exc})"
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10, check=False)
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and names:
                return names[0], "nvidia-smi lists it (torch is not installed)"
        except (OSError, subprocess.TimeoutExpired):
            pass
        return None, "nvidia-smi found no usable GPU"
    return None, "no CUDA GPU: torch is not installed and nvidia-smi is not on PATH"


def choose_backend(setting: str = "auto") -> BackendChoice:
    """vLLM when it is installed and a CUDA GPU is present, else llama.cpp in-process.

    An explicit setting is taken as is (``openai`` needs a server URL, so ``auto`` never picks it).
    """
    if setting not in BACKENDS:
        raise ValueError(f"unknown backend {setting!r}; choose one of {', '.join(BACKENDS)}")
    if setting != "auto":
        return BackendChoice(setting, f"set explicitly (backend: {setting})")
    if os.environ.get("BUDGETPASS_BACKEND") in BACKENDS[1:]:
        name = os.environ["BUDGETPASS_BACKEND"]
        return BackendChoice(name, f"BUDGETPASS_BACKEND={name} in the environment")
    has_vllm = importlib.util.find_spec("vllm") is not None
    gpu, how = cuda_gpu()
    if gpu and has_vllm:
        return BackendChoice("vllm", f"CUDA GPU {gpu} ({how}) and vllm is installed", gpu)
    if gpu:
        return BackendChoice("llama.cpp", f"CUDA GPU {gpu} ({how}) but vllm is not installed "
                                          "(pip install 'budgetpass[gpu]'); using llama.cpp", gpu)
    why = f"{how}; llama.cpp runs on the CPU"
    if has_vllm:
        why = f"vllm is installed but {why}"
    return BackendChoice("llama.cpp", why)
