"""What every backend offers the rest of the product, and the one error they raise."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from ..prompts import TemplateHints
from ..types import CompletionCallback, GenerationResult, SamplingParams


class BackendError(RuntimeError):
    """A backend could not load, reach or run its model; the message says how to fix it."""


@runtime_checkable
class Backend(Protocol):
    """A model that samples candidates: llama.cpp in-process (``llamacpp.LlamaCppModel``), a server
    speaking ``/v1/completions`` (``openai.OpenAICompatibleBackend``) or vLLM in-process
    (``vllm.VLLMBackend``)."""

    name: str  # the backend, for reports: llama.cpp | openai | vllm

    @property
    def busy(self) -> bool:
        """Whether a ``generate`` runs now (a caller may prefer not to queue behind it)."""

    def generate(self, prompt: str, n: int, params: SamplingParams,
                 on_token: Callable[[int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_complete: CompletionCallback | None = None) -> GenerationResult:
        """``n`` candidates of ``prompt``. ``on_token`` gets the running count of generated tokens;
        ``should_stop`` cancels (the candidates end ``cancelled``); ``on_complete`` gets each
        finished candidate: as it finishes (llama.cpp) or at the end (the others)."""

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """The model's token ids for ``text``, e.g. to fit a context budget; ``special``: marker
        texts such as ``<|im_end|>`` count as their one special token (user code never should).
        BackendError where the backend cannot tell."""

    def template_hints(self, markers: Iterable[str]) -> TemplateHints:
        """What the backend knows that tells the prompt template: which of ``markers`` (FIM
        marker texts) are single special tokens of its vocabulary, or the model's names."""

    def close(self) -> None:
        """Free the model now (memory, child processes); the backend is unusable after."""
