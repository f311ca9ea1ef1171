"""One interface over every place a model can run, and the choice ``backend: auto`` makes.

Every backend takes a prompt, a number of candidates and ``SamplingParams`` and returns a
``GenerationResult`` (candidates with per-token log-probabilities); ``should_stop`` cancels it;
``on_complete`` hears of each candidate once it is finished, so tests can start before the rest.
``LlamaCppModel`` (in-process, the CPU default), ``OpenAICompatibleBackend`` (a server speaking
``/v1/completions``) and ``VLLMBackend`` (in-process vLLM, the GPU path) all satisfy it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from .types import CompletionCallback, GenerationResult, SamplingParams

BACKENDS = ("auto", "llama.cpp", "vllm", "openai")


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, prompt: str, n: int, params: SamplingParams,
                 on_token: Callable[[int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_complete: CompletionCallback | None = None) -> GenerationResult:
        """``on_complete`` gets each finished candidate: as it finishes (llama.cpp) or at the end."""

    def close(self) -> None: ...


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


def open_backend(choice: BackendChoice | str, model_path, server_url: str | None = None,
                 server_model: str | None = None, threads: int | None = None,
                 vllm_model: str | None = None) -> Backend:
    """A ready backend for a choice: llama.cpp loads ``model_path`` (a GGUF); openai needs
    ``server_url`` (``server_model``: the name to request; default: the one the server lists);
    vllm needs a Hugging Face folder (``vllm_model``), not a GGUF.

    The product opens models through ``engine.open_model``, which caches them and picks the
    prompt template; this is the factory under it."""
    name = choice.name if isinstance(choice, BackendChoice) else choose_backend(choice).name
    if name == "llama.cpp":
        from .engine import load_model

        return load_model(model_path, threads)
    if name == "openai":
        if not server_url:
            raise ValueError("backend openai needs a server URL, e.g. http://127.0.0.1:8000")
        from .openai_http import OpenAICompatibleBackend

        return OpenAICompatibleBackend(server_url, server_model)
    if not vllm_model:
        raise ValueError("backend vllm needs a Hugging Face model folder (vllm_model); "
                         "vllm_backend.hf_folder_from_gguf makes one from a GGUF")
    from .vllm_backend import VLLMBackend

    return VLLMBackend(vllm_model)
