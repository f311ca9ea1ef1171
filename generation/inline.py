"""Completions at a cursor while the user types: which shape (one line or a whole body), the prompt,
and the tidy-up of what the model wrote.

The buffer is usually not valid Python mid-keystroke, so the structure comes from tree-sitter, which
parses broken code into a tree with error nodes instead of refusing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .locate import FunctionSite, function_at, functions, is_stub
from .prompts import PromptTemplate

__all__ = ["CursorContext", "InlinePrompt", "cursor_context", "function_at", "functions",
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
    # A whole body is asked for like the generate job does (generation.prompts.body_prompt): no
    # suffix, so the model does not borrow the next function's names; one line sees what follows.
    suffix = "" if multiline else text[offset:offset + suffix_chars]
    return CursorContext(offset, prefix, suffix, multiline, function, line_start,
                         before if multiline else "")


@dataclass(frozen=True)
class InlinePrompt:
    text: str
    stops: tuple[str, ...]


def inline_prompt(ctx: CursorContext, template: PromptTemplate) -> InlinePrompt:
    if ctx.multiline:
        def_indent = " " * ctx.function.def_column
        stops = tuple(f"\n{def_indent}{w}" for w in ("def ", "class ", "@", "if __name__"))
    else:
        stops = ("\n",)
    if template.is_fim:
        return InlinePrompt(f"{template.prefix}{ctx.prefix}{template.suffix}{ctx.suffix}"
                            f"{template.middle}", template.stops + stops)
    return InlinePrompt(ctx.prefix, stops)


def tidy_inline(generated: str, ctx: CursorContext) -> str:
    """The text to insert at the cursor, or "" when there is nothing worth showing."""
    if not ctx.multiline:
        line = generated.split("\n", 1)[0].rstrip()
        return line if line.strip() else ""
    def_column = ctx.function.def_column
    kept: list[str] = []
    for number, line in enumerate(generated.split("\n")):
        full = (ctx.typed_indent + line) if number == 0 else line
        if full.strip() and len(full) - len(full.lstrip()) <= def_column:
            break  # back at the def's level: the function is over
        kept.append(full.rstrip())
    while kept and not kept[-1].strip():
        kept.pop()
    body = "\n".join(kept)
    if not body.strip() or is_stub(body):
        return ""
    return body[len(ctx.typed_indent):]  # the typed indentation stays; insert after the cursor
