"""Fill-in-the-middle prompt templates of the model families (``TEMPLATES``), and which one fits a
model from what its backend tells (``choose_template_from``)."""

from __future__ import annotations

import re
from dataclasses import dataclass


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
    control tokens, e.g. from ``template_for``.
    """
    if override:
        if override not in TEMPLATES:
            raise ValueError(f"unknown prompt template {override!r}; known: {', '.join(TEMPLATES)}")
        return TEMPLATES[override]
    for template in TEMPLATES.values():
        if template.is_fim and set(template.markers) <= special_tokens:
            return template
    return LEFT_TO_RIGHT


# --- Template choice: which template fits a model, from what its backend tells ------------------
# (moved here from generation/engine.py; backends report ``TemplateHints``, this section decides)


@dataclass(frozen=True)
class TemplateHints:
    """What a backend can tell about its model's prompt format.

    ``special``: the FIM marker texts that are single special tokens of the vocabulary (None when
    the backend cannot see the vocabulary, e.g. a server); ``names``: model names that may name the
    family (a server's); ``source``: where ``special`` came from, for the reason shown to the user.
    """

    special: frozenset[str] | None = None
    names: tuple[str, ...] = ()
    source: str = "the model's vocabulary"


@dataclass(frozen=True)
class TemplateChoice:
    template: PromptTemplate
    reason: str
    fallback: bool = False  # nothing told the template: plain prompts; the reason says how to fix


def fim_markers() -> set[str]:
    """Every known FIM marker text (what ``Backend.template_hints`` is asked about)."""
    return {m for t in TEMPLATES.values() if t.is_fim for m in t.markers}


def template_for(backend, override: str | None = None) -> PromptTemplate:
    """The template of ``backend``'s model family (see ``choose_template_from``); ``override``
    (a template name) wins."""
    if override:
        return choose_template(set(), override)
    return choose_template_from(backend.template_hints(fim_markers())).template


def template_from_vocabulary(vocabulary) -> PromptTemplate:
    """For a Hugging Face tokenizer (vLLM's): the template whose markers are all among its
    special or added tokens (``vocabulary``: their texts), else plain."""
    return choose_template({m for m in fim_markers() if m in vocabulary})


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


def choose_template_from(hints: TemplateHints, configured: str = "",
                         override: str | None = None) -> TemplateChoice:
    """The template for a model, and why: ``override`` (a template name) wins; else the
    vocabulary's FIM special tokens; else (a server) the name it reports, then ``configured``
    (the model name the settings give)."""
    if override:
        return TemplateChoice(choose_template(set(), override), "set explicitly (template)")
    if hints.special is not None:
        found = choose_template(set(hints.special))
        return TemplateChoice(found, f"from {hints.source} (its FIM special tokens)"
                              if found.is_fim else f"{hints.source} has no known FIM markers")
    served = hints.names[0] if hints.names else ""
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
