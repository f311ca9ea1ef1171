"""The one prompt builder: every request kind (the job, inline completion, the benches) asks a
model for code through ``build_prompt``.

Styles (``PROMPT_STYLES``):
- ``fim``: the model family's fill-in-the-middle markers (``PromptTemplate``); the right choice for
  base models and for the rest of a line.
- ``chat``: the model's *own* chat template (read from the GGUF's ``tokenizer.chat_template`` or a
  Hugging Face folder's ``tokenizer_config.json``), rendered by sandboxed Jinja2 as Hugging Face
  does; the assistant's turn is prefilled with the code up to the body, so the reply is the body.
- ``plain``: the code up to the body, left to right.
- ``auto``: a whole body -> ``chat`` when the model has a chat template (bench/prompt_styles.py),
  else ``fim``; the rest of a line -> ``fim``.

The context is bounded by tokens and chosen by relevance (``body_context``), with its stable parts
(imports, signatures) first so consecutive requests share their prompt's beginning.

The package's modules, by concern: ``templates`` (fill-in-the-middle templates and which one fits
a model), ``base`` (the requests, the prompt and the model facts the builder takes), ``builder``
(``build_prompt``), ``chat`` (a model's own chat template: reading and rendering it),
``context`` (the token-bounded relevant context).
"""

from .base import (
    BodyRequest,
    ChatTemplate,
    LineRequest,
    ModelPromptInfo,
    Prompt,
    PromptError,
    RepairHint,
)
from .builder import (
    AUTO_BODY_STYLE,
    CHAT_INSTRUCTION,
    DEFAULT_MAX_CONTEXT_TOKENS,
    PROMPT_STYLES,
    build_prompt,
)
from .chat import (
    chat_template_from_gguf,
    chat_template_from_hf,
    gguf_metadata,
    model_prompt_info,
    prompt_info_for,
    render_chat,
)
from .context import body_context
from .templates import (
    CODELLAMA,
    CODESTRAL,
    DEEPSEEK_CODER,
    LEFT_TO_RIGHT,
    NAME_HINTS,
    QWEN_CODER,
    STARCODER2,
    TEMPLATES,
    PromptTemplate,
    TemplateChoice,
    TemplateHints,
    choose_template,
    choose_template_from,
    fim_markers,
    template_for,
    template_from_name,
    template_from_vocabulary,
)

__all__ = [
    "AUTO_BODY_STYLE", "CHAT_INSTRUCTION", "CODELLAMA", "CODESTRAL", "DEEPSEEK_CODER",
    "DEFAULT_MAX_CONTEXT_TOKENS", "LEFT_TO_RIGHT", "NAME_HINTS", "PROMPT_STYLES", "QWEN_CODER",
    "STARCODER2", "TEMPLATES", "BodyRequest", "ChatTemplate", "LineRequest", "ModelPromptInfo",
    "Prompt", "PromptError", "PromptTemplate", "RepairHint", "TemplateChoice", "TemplateHints",
    "body_context", "build_prompt", "chat_template_from_gguf", "chat_template_from_hf", "choose_template",
    "choose_template_from", "fim_markers", "gguf_metadata", "model_prompt_info", "prompt_info_for",
    "render_chat", "template_for", "template_from_name", "template_from_vocabulary",
]
