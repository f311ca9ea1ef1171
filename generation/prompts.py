"""Prompts that ask a code model for a function body, given the file around it."""

from __future__ import annotations

from dataclasses import dataclass

from .source import FunctionSite


@dataclass(frozen=True)
class PromptTemplate:
    """Fill-in-the-middle markers of one model family; ``None`` markers mean left-to-right only.

    The prompt is ``prefix + code before + suffix + code after + middle`` (``suffix_first``:
    ``suffix + code after + prefix + code before + middle``, Codestral's order). Markers are used
    verbatim, spaces included (CodeLlama's ``<PRE> `` / `` <SUF>`` / `` <MID>`` need theirs).
    """

    name: str
    prefix: str | None = None
    suffix: str | None = None
    middle: str | None = None
    stops: tuple[str, ...] = ()
    suffix_first: bool = False

    @property
    def is_fim(self) -> bool:
        return self.prefix is not None

    @property
    def markers(self) -> tuple[str, ...]:
        """The marker tokens, without the spaces some families put around them."""
        return tuple(m.strip() for m in (self.prefix, self.suffix, self.middle) if m and m.strip())

    def fill(self, before: str, after: str) -> str:
        if not self.is_fim:
            return before
        if self.suffix_first:
            return f"{self.suffix}{after}{self.prefix}{before}{self.middle or ''}"
        return f"{self.prefix}{before}{self.suffix}{after}{self.middle}"


QWEN_CODER = PromptTemplate(
    name="qwen2.5-coder",
    prefix="<|fim_prefix|>",
    suffix="<|fim_suffix|>",
    middle="<|fim_middle|>",
    stops=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|fim_prefix|>"),
)
DEEPSEEK_CODER = PromptTemplate(
    name="deepseek-coder",
    prefix="<｜fim▁begin｜>",
    suffix="<｜fim▁hole｜>",
    middle="<｜fim▁end｜>",
    stops=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>"),
)
STARCODER2 = PromptTemplate(
    name="starcoder2",
    prefix="<fim_prefix>",
    suffix="<fim_suffix>",
    middle="<fim_middle>",
    stops=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_pad>"),
)
# Meta's infilling format: "<PRE> {prefix} <SUF>{suffix} <MID>"; the model ends the hole with <EOT>.
CODELLAMA = PromptTemplate(
    name="codellama",
    prefix="<PRE> ",
    suffix=" <SUF>",
    middle=" <MID>",
    stops=("<EOT>", "</s>"),
)
# Mistral's Codestral: "[SUFFIX]{suffix}[PREFIX]{prefix}", the middle follows directly.
CODESTRAL = PromptTemplate(
    name="codestral",
    prefix="[PREFIX]",
    suffix="[SUFFIX]",
    middle="",
    stops=("</s>", "[PREFIX]", "[SUFFIX]"),
    suffix_first=True,
)
LEFT_TO_RIGHT = PromptTemplate(name="plain")

TEMPLATES = {t.name: t for t in (QWEN_CODER, DEEPSEEK_CODER, STARCODER2, CODELLAMA, CODESTRAL,
                                 LEFT_TO_RIGHT)}


def choose_template(special_tokens: set[str], override: str | None = None) -> PromptTemplate:
    """The template whose FIM markers are all single special tokens of the model, else plain.

    ``special_tokens`` holds marker texts (stripped of spaces) the vocabulary has as single
    control tokens, e.g. from ``engine.template_for``.
    """
    if override:
        if override not in TEMPLATES:
            raise ValueError(f"unknown prompt template {override!r}; known: {', '.join(TEMPLATES)}")
        return TEMPLATES[override]
    for template in TEMPLATES.values():
        if template.is_fim and set(template.markers) <= special_tokens:
            return template
    return LEFT_TO_RIGHT


@dataclass(frozen=True)
class BodyPrompt:
    text: str
    template: PromptTemplate
    stops: tuple[str, ...]


def body_prompt(source: str, site: FunctionSite, template: PromptTemplate,
                include_suffix: bool = False) -> BodyPrompt:
    """Prompt for the body at ``site``.

    The code after the function is left out of the FIM suffix by default: with Qwen2.5-Coder 0.5B
    it made the body borrow the next function's names (bench/prompt_context.py measures it).
    """
    prefix = source[: site.body_start]
    suffix = source[site.body_end :] if include_suffix else ""
    # A new top-level statement at the def's indentation ends a body in either mode.
    stops = tuple(f"\n{site.def_indent}{word}" for word in ("def ", "class ", "@", "if __name__"))
    if template.is_fim:
        return BodyPrompt(template.fill(prefix, suffix), template, template.stops + stops)
    return BodyPrompt(prefix, template, stops)
