"""The one way the product gets a model: ``open_model(spec)``, through one process-wide cache.

It picks the backend the settings name (``auto`` | ``llama.cpp`` | ``vllm`` | ``openai``), opens
the model once per process (the CLI opens one; the server's inline requests and jobs share it), and
says which prompt template fits it and how many parameters the budget should count.

Cache rule: at most ``KEEP_OPENED`` models are held, the most recently asked for. One that drops
out is not closed (a running job may still hold it): it is freed when its last holder lets go,
and handed out again meanwhile if asked for, so a model is never in memory twice. ``close_all``
closes every model still alive (process exit, tests). Opening is serialised by one lock: two
threads asking for the same model at once load it once.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from .. import models
from ..prompts import TemplateChoice, TemplateHints, choose_template_from, fim_markers
from .base import Backend, BackendError
from .choice import BackendChoice, choose_backend

KEEP_OPENED = 2


@dataclass(frozen=True)
class ModelSpec:
    """Which model on which backend, as settings name it."""

    model: str = models.DEFAULT_MODEL  # name, .gguf path; for openai also a count such as 0.5B
    backend: str = "auto"  # auto | llama.cpp | vllm | openai
    endpoint: str = ""  # openai: the server's URL
    threads: int | None = None  # llama.cpp
    vllm_model: str = ""  # vllm: a Hugging Face folder; default: converted once from the GGUF


@dataclass(eq=False)
class OpenedModel:
    """A ready backend and what the job needs to know about it."""

    spec: ModelSpec
    choice: BackendChoice
    backend: Backend
    name: str
    parameters: int  # of the model that generates: the budget's P_small
    auto_template: TemplateChoice
    sha256: str | None = None  # the local weights (calibrated speeds are keyed by it)
    info: dict = field(default_factory=dict)  # for reports
    seconds: float = 0.0  # load time

    def template(self, override: str | None = None) -> TemplateChoice:
        """``override`` (a template name) wins over what the backend told."""
        if override:
            return choose_template_from(TemplateHints(), override=override)
        return self.auto_template

    def to_json(self) -> dict:
        return {"name": self.name, "backend": self.choice.name,
                "backend_reason": self.choice.reason, "parameters": self.parameters,
                "sha256": self.sha256, **self.info}


class ModelCache:
    """Opened models by what they load (see the module's cache rule); thread-safe."""

    def __init__(self, keep: int = KEEP_OPENED):
        self.keep = keep
        self._held: OrderedDict[tuple, OpenedModel] = OrderedDict()  # oldest first
        self._alive: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # backends
        self._lock = threading.Lock()

    def open(self, spec: ModelSpec) -> OpenedModel:
        """The model for ``spec``, opened once. Raises ModelError/BackendError/ValueError with a
        message that says how to fix it (a failure is not cached: the next call tries again)."""
        with self._lock:
            choice = choose_backend(spec.backend)
            key = _identity(spec, choice)
            opened = self._held.get(key)
            if opened is None:
                start = time.monotonic()
                model_parameters(spec)  # a spec the budget cannot count fails before loading
                backend = self._alive.get(key)
                if backend is None:  # not alive in a job that still holds it either
                    backend = _load(spec, choice)
                    self._alive[key] = backend
                opened = _describe(spec, choice, backend, time.monotonic() - start)
            self._held[key] = opened
            self._held.move_to_end(key)
            while len(self._held) > self.keep:
                self._held.popitem(last=False)
            return opened

    def close_all(self) -> None:
        """Close every model still alive, held or not; later ``open`` calls load again."""
        with self._lock:
            alive = list(self._alive.values())
            self._held.clear()
            self._alive = weakref.WeakValueDictionary()
        for backend in alive:
            backend.close()


_CACHE = ModelCache()
open_model = _CACHE.open
close_models = _CACHE.close_all


def open_llamacpp(path: str | Path, threads: int | None = None):
    """The llama.cpp backend (``LlamaCppModel``) for a GGUF path or registered name, through
    ``open_model`` and its cache (benches, calibration and tests use the model directly)."""
    return open_model(ModelSpec(str(path), "llama.cpp", threads=threads)).backend


def model_parameters(spec: ModelSpec) -> int:
    """P_small for the budget, without loading anything."""
    if choose_backend(spec.backend).name != "openai":
        return models.resolve(spec.model).parameters
    try:
        return models.parameter_count(spec.model)
    except models.ModelError:
        raise models.ModelError(
            f"backend openai: cannot tell how many parameters model {spec.model!r} has, which the "
            f"budget needs; set model to a known name ({', '.join(sorted(models.REGISTRY))}), a "
            "local .gguf path, or a parameter count such as 0.5B") from None


def _identity(spec: ModelSpec, choice: BackendChoice) -> tuple:
    """What a model loads, so that a name and its path (or ``auto`` and the backend it picks)
    share one copy."""
    if choice.name == "openai":
        return choice.name, spec.endpoint, spec.model
    path = str(models.resolve(spec.model).path)
    if choice.name == "llama.cpp":
        return choice.name, path, spec.threads
    return choice.name, path, spec.vllm_model


def _load(spec: ModelSpec, choice: BackendChoice) -> Backend:
    """The factory: the backend ``choice`` names, loaded for ``spec``."""
    if choice.name == "openai":
        if not spec.endpoint:
            raise ValueError("backend openai needs the server's URL: set endpoint (--endpoint), "
                             "e.g. http://127.0.0.1:8080")
        from .openai import OpenAICompatibleBackend

        backend = OpenAICompatibleBackend(spec.endpoint)
        backend.served_model(spec.model)  # also proves the server answers
        return backend
    path = models.resolve(spec.model).path
    if choice.name == "llama.cpp":
        from .llamacpp import LlamaCppModel

        return LlamaCppModel(path, n_threads=spec.threads)
    from .vllm import VLLMBackend

    return VLLMBackend(spec.vllm_model or str(_hf_folder(path)))


def _describe(spec: ModelSpec, choice: BackendChoice, backend: Backend,
              seconds: float) -> OpenedModel:
    """What the job needs to know of a loaded backend: template, parameters, identity."""
    parameters = model_parameters(spec)
    if choice.name == "openai":
        template = choose_template_from(backend.template_hints(()), spec.model)
        return OpenedModel(spec, choice, backend, spec.model, parameters, template,
                           info={"endpoint": spec.endpoint, "served_model": backend.model},
                           seconds=seconds)
    resolved = models.resolve(spec.model)
    info = {k: v for k, v in resolved.to_json().items() if k not in ("name", "parameters",
                                                                       "sha256")}
    if choice.name == "vllm":
        info["vllm_model"] = backend.model
    template = choose_template_from(backend.template_hints(fim_markers()))
    return OpenedModel(spec, choice, backend, resolved.name, parameters, template,
                       sha256=resolved.sha256, info=info, seconds=seconds)


def _hf_folder(gguf: Path) -> Path:
    """vLLM loads Hugging Face folders, not GGUF: the one converted once into the model cache."""
    from .vllm import cached_hf_folder

    try:
        return cached_hf_folder(gguf)
    except BackendError as exc:
        raise BackendError(f"backend vllm: {exc}; or set vllm_model to a Hugging Face "
                           "folder") from None
