"""Loaded models, kept for the life of the process (the CLI loads one; the server reuses it).

``open_model`` is the one way the product gets a model: it picks the backend the settings name
(``auto`` | ``llama.cpp`` | ``vllm`` | ``openai``), opens it once per process, and says which prompt
template fits it and how many parameters the budget should count.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import models
from .backends import Backend, BackendChoice, choose_backend, open_backend
from .llamacpp import BackendError, LlamaCppModel
from .prompts import LEFT_TO_RIGHT, TEMPLATES, PromptTemplate, choose_template


@functools.lru_cache(maxsize=2)
def load_model(path: Path, n_threads: int | None = None) -> LlamaCppModel:
    return LlamaCppModel(path, n_threads=n_threads)


def template_for(model: LlamaCppModel, override: str | None = None) -> PromptTemplate:
    """The model family's FIM template: markers that are single special tokens of its vocabulary,
    or that the GGUF declares as its FIM tokens; ``override`` (a template name) wins."""
    if override:
        return choose_template(set(), override)
    special = {m for m in _fim_markers() if model.is_special_token(m)} | model.fim_marker_texts()
    return choose_template(special, override)


def _fim_markers() -> set[str]:
    return {m for t in TEMPLATES.values() if t.is_fim for m in t.markers}


def template_from_vocabulary(vocabulary) -> PromptTemplate:
    """For a Hugging Face tokenizer (vLLM's): the template whose markers are all among its
    special or added tokens (``vocabulary``: their texts), else plain."""
    return choose_template({m for m in _fim_markers() if m in vocabulary})


# Model-name fragments (lower case, separators dropped) -> template, for servers, which report a
# name but not their vocabulary. The first match wins.
NAME_HINTS = (
    (re.compile(r"codeqwen"), "starcoder2"),  # CodeQwen1.5 uses StarCoder's <fim_*> markers
    (re.compile(r"qwen\d*coder"), "qwen2.5-coder"),
    (re.compile(r"deepseekcoder"), "deepseek-coder"),
    (re.compile(r"starcoder"), "starcoder2"),
    (re.compile(r"codellama"), "codellama"),
    (re.compile(r"codestral"), "codestral"),
)


def template_from_name(*names: str) -> PromptTemplate | None:
    """The template a model name implies (``Qwen/Qwen2.5-Coder-0.5B``, ``.../qwen2.5-coder.gguf``),
    or None if no name says."""
    for name in names:
        plain = re.sub(r"[\s._\-/]", "", (name or "").lower())
        for pattern, template in NAME_HINTS:
            if pattern.search(plain):
                return TEMPLATES[template]
    return None


@dataclass(frozen=True)
class ModelSpec:
    """Which model on which backend, as settings name it; hashable: the key of the loaded-model
    cache."""

    model: str = models.DEFAULT_MODEL  # name, .gguf path; for openai also a count such as 0.5B
    backend: str = "auto"  # auto | llama.cpp | vllm | openai
    endpoint: str = ""  # openai: the server's URL
    threads: int | None = None  # llama.cpp
    vllm_model: str = ""  # vllm: a Hugging Face folder; default: converted once from the GGUF


@dataclass(frozen=True)
class TemplateChoice:
    template: PromptTemplate
    reason: str
    fallback: bool = False  # nothing told the template: plain prompts; the reason says how to fix


@dataclass
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
            return TemplateChoice(choose_template(set(), override), "set explicitly (template)")
        return self.auto_template

    def to_json(self) -> dict:
        return {"name": self.name, "backend": self.choice.name,
                "backend_reason": self.choice.reason, "parameters": self.parameters,
                "sha256": self.sha256, **self.info}


_opened: dict[ModelSpec, OpenedModel] = {}
_opening = threading.Lock()
KEEP_OPENED = 2


def open_model(spec: ModelSpec) -> OpenedModel:
    """The model for ``spec``, opened once per process (the server's inline requests and its jobs
    share it). Raises ModelError/BackendError/ValueError with a message that says how to fix it."""
    with _opening:  # one load at a time: a job and the server's slot must not load it twice
        opened = _opened.get(spec)
        if opened is None:
            opened = _open(spec)
            _opened[spec] = opened
            while len(_opened) > KEEP_OPENED:  # dropped, not closed: a running job may hold it
                _opened.pop(next(iter(_opened)))
        return opened


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


def _open(spec: ModelSpec) -> OpenedModel:
    start = time.monotonic()
    choice = choose_backend(spec.backend)
    parameters = model_parameters(spec)
    if choice.name == "openai":
        if not spec.endpoint:
            raise ValueError("backend openai needs the server's URL: set endpoint (--endpoint), "
                             "e.g. http://127.0.0.1:8080")
        backend = open_backend(choice, None, server_url=spec.endpoint)
        served = backend.served_model(spec.model)  # also proves the server answers
        template = _server_template(served, spec.model)
        return OpenedModel(spec, choice, backend, spec.model, parameters, template,
                           info={"endpoint": spec.endpoint, "served_model": served},
                           seconds=time.monotonic() - start)
    resolved = models.resolve(spec.model)
    info = {k: v for k, v in resolved.to_json().items() if k not in ("name", "parameters",
                                                                       "sha256")}
    if choice.name == "llama.cpp":
        backend = open_backend(choice, resolved.path, threads=spec.threads)
        found = template_for(backend)
        template = TemplateChoice(found, "from the model's vocabulary (its FIM special tokens)"
                                  if found.is_fim else "the vocabulary has no known FIM markers")
    else:
        folder = spec.vllm_model or str(_hf_folder(resolved))
        backend = open_backend(choice, resolved.path, vllm_model=folder)
        found = template_from_vocabulary(backend.special_token_ids)  # added + special tokens
        template = TemplateChoice(found, "from the tokenizer's special tokens (its FIM tokens)"
                                  if found.is_fim else "the tokenizer has no known FIM markers")
        info["vllm_model"] = folder
    return OpenedModel(spec, choice, backend, resolved.name, parameters, template,
                       sha256=resolved.sha256, info=info, seconds=time.monotonic() - start)


def _server_template(served: str, configured: str) -> TemplateChoice:
    """A server tells its model's name, not its vocabulary: the name it reports, else the
    configured one, names the family."""
    found = template_from_name(served)
    if found is not None:
        return TemplateChoice(found, f"from the model name the server reports ({served!r})")
    found = template_from_name(configured)
    if found is not None:
        return TemplateChoice(found, f"from the configured model name ({configured!r}); the "
                                     f"server's ({served!r}) names no known family")
    return TemplateChoice(
        LEFT_TO_RIGHT,
        f"the server's model name {served!r} names no known code-model family, so prompts are "
        "plain left-to-right (no fill-in-the-middle); if the model has FIM tokens, set template "
        f"to one of {', '.join(TEMPLATES)}", fallback=True)


def _hf_folder(resolved: models.ResolvedModel) -> Path:
    """vLLM loads Hugging Face folders, not GGUF: the one converted once into the model cache."""
    from .vllm_backend import cached_hf_folder

    try:
        return cached_hf_folder(resolved.path)
    except BackendError as exc:
        raise BackendError(f"backend vllm: {exc}; or set vllm_model to a Hugging Face "
                           "folder") from None
