"""Completions at a cursor while the user types: which shape (one line or a whole body), its request
to the prompt builder (generation.prompts.build_prompt), and the tidy-up of what the model wrote
(generation.source.normalize_body for a whole body).

The buffer is usually not valid Python mid-keystroke, so the structure comes from tree-sitter, which
parses broken code into a tree with error nodes instead of refusing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .locate import FunctionSite, function_at, functions
from .prompts import (
    DEFAULT_MAX_CONTEXT_TOKENS,
    BodyRequest,
    LineRequest,
    ModelPromptInfo,
    Prompt,
    build_prompt,
)
from .source import Body, normalize_body

__all__ = ["CursorContext", "cursor_context", "function_at", "functions", "inline_body",
           "inline_prompt", "tidy_inline"]

# Prompt windows, in characters, around the cursor: bounded so a 50k-line file costs what a small one
# does (prompt evaluation dominates single-line latency on a CPU).
# The prefix window starts at a line boundary that moves in steps of PREFIX_STEP characters, so that
# consecutive keystrokes share their prompt's beginning and the backend reuses its evaluated tokens.
PREFIX_CHARS = 3000
PREFIX_STEP = 1024
SUFFIX_CHARS = 300


@dataclass(frozen=True)
class CursorContext:
    """What an inline completion at ``offset`` needs: the window of text and the shape to produce."""

    offset: int
    prefix: str
    suffix: str
    multiline: bool  # cursor on a blank line of an empty function body: propose the whole body
    function: FunctionSite | None
    line_start: int  # offset of the cursor line's first character
    typed_indent: str  # whitespace before the cursor on its line (multi-line mode)


def cursor_context(text: str, offset: int, prefix_chars: int = PREFIX_CHARS,
                   suffix_chars: int = SUFFIX_CHARS) -> CursorContext:
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    before, after = text[line_start:offset], text[offset:line_end]
    function = function_at(text, offset)
    line = text.count("\n", 0, offset)
    multiline = (function is not None and function.body_is_empty and not before.strip()
                 and not after.strip() and line > function.header_end_line
                 and len(before) > function.def_column)
    window = max(0, offset - prefix_chars) // PREFIX_STEP * PREFIX_STEP
    if window:
        window = text.find("\n", window) + 1 or window
    prefix = text[window:offset]
    # A whole body is asked for like the generate job does (generation.prompts.build_prompt): no
    # suffix, so the model does not borrow the next function's names; one line sees what follows.
    suffix = "" if multiline else text[offset:offset + suffix_chars]
    return CursorContext(offset, prefix, suffix, multiline, function, line_start,
                         before if multiline else "")


def inline_prompt(ctx: CursorContext, model: ModelPromptInfo, style: str = "auto", *,
                  text: str, path: Path | None = None, project: Path | None = None,
                  max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS) -> Prompt:
    """A whole body is the same request the generate job makes (so the same prompt); one line
    is the windowed prefix and suffix around the cursor."""
    if ctx.multiline:
        request = BodyRequest(text, ctx.function.qualname, path, project, cursor=ctx.offset)
        return build_prompt(request, model, style, max_context_tokens)
    return build_prompt(LineRequest(ctx.prefix, ctx.suffix), model, style, max_context_tokens)


def inline_body(generated: str, ctx: CursorContext, prompt: Prompt | None = None) -> Body:
    """What the model wrote, as text to insert at the cursor (``source.normalize_body`` for a whole
    body), with the reason it is unusable if it is."""
    if not ctx.multiline:
        line = generated.split("\n", 1)[0].rstrip()
        return Body(line, "" if line.strip() else "nothing on the line")
    site = prompt.site if prompt is not None and prompt.site is not None else FunctionSite.bare(
        ctx.function.qualname, " " * ctx.function.def_column, ctx.typed_indent)
    # The builder's prompt ends at a line's start: the reply carries its own indentation.
    # Without it (a bare FIM continuation after the typed indentation) the typed one counts.
    body = normalize_body(generated, site)
    text = body.text.rstrip("\n")
    if text.split("\n", 1)[0].startswith(ctx.typed_indent):
        return Body(text[len(ctx.typed_indent):], body.problem)
    return Body(text.lstrip(" \t"), body.problem)  # the typed indentation stays; insert after it


def tidy_inline(generated: str, ctx: CursorContext, prompt: Prompt | None = None) -> str:
    """The text to insert at the cursor, or "" when there is nothing worth showing."""
    body = inline_body(generated, ctx, prompt)
    return body.text if body.usable else ""
