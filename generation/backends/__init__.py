"""Every place a model can run, behind one interface (``Backend``) and one way to open one.

``open_model(spec)`` (``opening.py``) chooses the backend (``choice.py``: ``auto`` picks vLLM on a
CUDA GPU, else llama.cpp), loads it once per process through the one model cache, and says which
prompt template fits it (the choice itself is the prompt module's, ``prompts.choose_template_from``).
One module per backend: ``llamacpp`` (in-process, the CPU default; its sampler in ``sampler``),
``openai`` (a server speaking ``/v1/completions``) and ``vllm`` (in-process vLLM, the GPU path);
they import no more than they need, so the package imports without llama.cpp or vLLM installed.
"""

from .base import Backend, BackendError
from .choice import BACKENDS, BackendChoice, choose_backend, cuda_gpu
from .opening import (
    KEEP_OPENED,
    ModelCache,
    ModelSpec,
    OpenedModel,
    close_models,
    model_parameters,
    open_llamacpp,
    open_model,
)

__all__ = ["BACKENDS", "KEEP_OPENED", "Backend", "BackendChoice", "BackendError", "ModelCache",
           "ModelSpec", "OpenedModel", "choose_backend", "close_models", "cuda_gpu",
           "model_parameters", "open_llamacpp", "open_model"]
