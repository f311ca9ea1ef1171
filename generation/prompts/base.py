"""What the prompt builder takes and gives: the requests, the model's prompt facts, the prompt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..source import FunctionSite
from .templates import LEFT_TO_RIGHT, PromptTemplate


class PromptError(ValueError):
    """The prompt cannot be built as asked; the message names the model and how to fix it."""


@dataclass(frozen=True)
class ChatTemplate:
    """A model's own chat template (Jinja2 source) and the special tokens it refers to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    origin: str = ""  # where it was read from, for messages


@dataclass(frozen=True)
class ModelPromptInfo:
    """What the builder needs to know about a model: its name (for messages), its FIM template,
    its chat template (None: it has none) and how to count tokens (None: about 3 characters
    each)."""

    name: str
    fim: PromptTemplate = LEFT_TO_RIGHT
    chat: ChatTemplate | None = None
    count_tokens: Callable[[str], int] | None = field(default=None, compare=False, repr=False)

    @property
    def styles(self) -> tuple[str, ...]:
        """The styles this model supports (``auto`` always)."""
        return ("auto",) + (("fim",) if self.fim.is_fim else ()) + (
            ("chat",) if self.chat else ()) + ("plain",)

    def tokens(self, text: str) -> int:
        if not text:
            return 0
        return self.count_tokens(text) if self.count_tokens else (len(text) + 2) // 3


@dataclass(frozen=True)
class RepairHint:
    """A body that failed the function's tests and what the first failing test said: the next
    candidates are asked to fix it (repair rounds of generate-until-pass)."""

    body: str
    failure: str


@dataclass(frozen=True)
class BodyRequest:
    """A whole body for ``function`` in ``text`` (a file or an editor's buffer). ``path`` and
    ``project`` let the context show signatures from the project modules the file imports.
    ``cursor``: inline completion's offset, used when ``text`` does not parse mid-keystroke.
    ``repair``: a failed attempt to fix, shown to the model just above where the body starts.
    ``test_calls``: lines of the project's tests that call the function, shown the same way."""

    text: str
    function: str
    path: Path | None = None
    project: Path | None = None
    cursor: int | None = None
    repair: RepairHint | None = None
    test_calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class LineRequest:
    """The rest of a line at a cursor: the text before it and after it (already windowed)."""

    prefix: str
    suffix: str


@dataclass(frozen=True)
class Prompt:
    """What to send and how to read the reply.

    ``prefill``: the code the reply continues (it ends where the body starts); ``site``: where the
    body goes (its def's and body's indentation, for ``source.normalize_body``).
    """

    text: str
    style: str  # fim | chat | plain: the style used (never auto)
    stops: tuple[str, ...]
    prefill: str
    template: str  # the FIM template's name, or "chat" / "plain"
    notes: tuple[str, ...] = ()
    context_tokens: int = 0
    site: FunctionSite | None = None

    def to_json(self) -> dict:
        return {"style": self.style, "template": self.template, "notes": list(self.notes),
                "context_tokens": self.context_tokens}
