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
    markers = {m for t in TEMPLATES.values() if t.is_fim for m in (t.prefix, t.suffix, t.middle)}
    return choose_template({m for m in markers if model.is_special_token(m)}, override)
