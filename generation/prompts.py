"""Prompts that ask a code model for a function body, given the file around it."""

from __future__ import annotations

from dataclasses import dataclass

from .source import FunctionSite


@dataclass(frozen=True)
class PromptTemplate:
    """Fill-in-the-middle markers of one model family; ``None`` markers mean left-to-right only."""

    name: str
    prefix: str | None = None
    suffix: str | None = None
    middle: str | None = None
    stops: tuple[str, ...] = ()

    @property
    def is_fim(self) -> bool:
        return self.prefix is not None


QWEN_CODER = PromptTemplate(
    name="qwen2.5-coder",
    prefix="<|fim_prefix|>",
    suffix="<|fim_suffix|>",
    middle="<|fim_middle|>",
    stops=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|fim_prefix|>"),
)
LEFT_TO_RIGHT = PromptTemplate(name="plain")

TEMPLATES = {t.name: t for t in (QWEN_CODER, LEFT_TO_RIGHT)}


def choose_template(special_tokens: set[str], override: str | None = None) -> PromptTemplate:
    """The template whose FIM markers are all single special tokens of the model, else plain."""
    if override:
        if override not in TEMPLATES:
            raise ValueError(f"unknown prompt template {override!r}; known: {', '.join(TEMPLATES)}")
        return TEMPLATES[override]
    for template in TEMPLATES.values():
        if template.is_fim and {template.prefix, template.suffix, template.middle} <= special_tokens:
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
        text = f"{template.prefix}{prefix}{template.suffix}{suffix}{template.middle}"
        return BodyPrompt(text, template, template.stops + stops)
    return BodyPrompt(prefix, template, stops)
