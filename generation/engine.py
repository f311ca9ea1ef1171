"""Loaded models, kept for the life of the process (the CLI loads one; the server reuses it)."""

from __future__ import annotations

import functools
from pathlib import Path

from .llamacpp import LlamaCppModel
from .prompts import TEMPLATES, PromptTemplate, choose_template


@functools.lru_cache(maxsize=2)
def load_model(path: Path, n_threads: int | None = None) -> LlamaCppModel:
    return LlamaCppModel(path, n_threads=n_threads)


def template_for(model: LlamaCppModel, override: str | None = None) -> PromptTemplate:
    """The model family's FIM template: markers that are single special tokens of its vocabulary,
    or that the GGUF declares as its FIM tokens; ``override`` (a template name) wins."""
    if override:
        return choose_template(set(), override)
    markers = {m for t in TEMPLATES.values() if t.is_fim for m in t.markers}
    special = {m for m in markers if model.is_special_token(m)} | model.fim_marker_texts()
    return choose_template(special, override)
