"""The one prompt builder, ``build_prompt`` (the package's docstring describes the styles)."""

from __future__ import annotations

import textwrap

from .base import BodyRequest, LineRequest, ModelPromptInfo, Prompt, PromptError, RepairHint
from .chat import render_chat
from .context import BodyContext, body_context

PROMPT_STYLES = ("auto", "fim", "chat", "plain")
# What ``auto`` uses for a whole body when the model has a chat template: on HumanEval (all 164,
# bench/results/prompt_styles.json) the bundled Instruct models answer far better through their
# own chat template than through FIM.
AUTO_BODY_STYLE = "chat"
# Tokens of code context around a whole body. A function deep in a large module then costs about
# what one in a small file does before the first candidate token (bench/prompt_styles.py measures
# the ratio); HumanEval-sized files fit whole.
DEFAULT_MAX_CONTEXT_TOKENS = 1024
# A repair shows the failed body and the failing test's message as comments where the body starts
# (every style: the reply is still the body), bounded so that neither crowds out the code.
REPAIR_BODY_LINES = 40
REPAIR_FAILURE_LINES = 12
REPAIR_LINE_CHARS = 160
CHAT_INSTRUCTION = ("Complete the Python function `{name}` below: write the rest of its body. "
                    "Reply with the code in one ```python block.")
# When the code above the function had to be chosen (it does not fit whole), it is shown once.
CHAT_INSTRUCTION_ABOVE = ("Below is code from the module above the Python function `{name}`. "
                          "Complete `{name}`: write the rest of its body. Reply with the code in "
                          "one ```python block.")


def build_prompt(request: BodyRequest | LineRequest, model: ModelPromptInfo, style: str = "auto",
                 max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS) -> Prompt:
    """The prompt for ``request`` in ``style`` (one of ``PROMPT_STYLES``).

    Raises PromptError for a style the model cannot do (naming the styles it can) and for a chat
    template that fails to render (naming its line); ``auto`` then falls back to FIM and notes it.
    """
    if style not in PROMPT_STYLES:
        raise PromptError(f"unknown prompt style {style!r}; choose one of {', '.join(PROMPT_STYLES)}")
    if max_context_tokens < 64:
        raise PromptError(f"max context tokens must be at least 64, not {max_context_tokens}")
    if isinstance(request, LineRequest):
        return _line_prompt(request, model, style)
    chosen = style
    if style == "auto":
        chosen = AUTO_BODY_STYLE if model.chat else ("fim" if model.fim.is_fim else "plain")
    _check_supported(model, chosen)
    # A chat prompt's code is chosen within half the budget: a file that fits is shown twice (the
    # user's turn and the opened reply: the form measured on HumanEval); one that does not is shown
    # once, the reply opening on the enclosing classes' statements and the function's own lines.
    context = body_context(
        request, model, max_context_tokens // 2 if chosen == "chat" else max_context_tokens)
    code, site, used, notes = context.code, context.site, context.tokens, context.notes
    stops = _dedent_stops(site.def_indent)
    calls = request.test_calls
    if calls:
        notes = notes + (f"shows {len(calls)} line(s) of the tests that call it",)
    repair = ""
    if request.repair is not None:
        repair = _repair_comment(request.repair, site.body_indent)
        notes = notes + ("asks to repair a failed candidate",)
    if chosen == "chat":
        try:
            return _chat_prompt(context, repair, model, stops, notes, calls)
        except PromptError as exc:
            if style != "auto":
                raise
            chosen = "fim" if model.fim.is_fim else "plain"
            notes = notes + (f"auto: {exc}; fell back to {chosen}",)
    # Left to right, the tests' calls are comments the body follows.
    code += (_test_calls_comment(calls, site.body_indent) if calls else "") + repair
    if chosen == "fim":
        return Prompt(model.fim.fill(code, ""), "fim", model.fim.stops + stops, code,
                      model.fim.name, notes, used, site)
    return Prompt(code, "plain", stops, code, "plain", notes, used, site)


def _check_supported(model: ModelPromptInfo, style: str) -> None:
    if style in model.styles:
        return
    why = ("has no chat template (tokenizer.chat_template)" if style == "chat"
           else "has no fill-in-the-middle tokens")
    raise PromptError(f"model {model.name} {why}, so it cannot take {style} prompts; styles it "
                      f"supports: {', '.join(model.styles)}")


def _line_prompt(request: LineRequest, model: ModelPromptInfo, style: str) -> Prompt:
    """The rest of a line is always asked left to right or fill-in-the-middle: a chat turn is for
    whole bodies (a ``chat`` setting still applies to those)."""
    notes: tuple[str, ...] = ()
    if style == "chat":
        notes = ("the rest of a line is asked with fim; the chat style applies to whole bodies",)
    chosen = "plain" if style == "plain" or not model.fim.is_fim else "fim"
    if style == "fim":
        _check_supported(model, "fim")
    if chosen == "fim":
        return Prompt(model.fim.fill(request.prefix, request.suffix), "fim",
                      model.fim.stops + ("\n",), request.prefix, model.fim.name, notes)
    return Prompt(request.prefix, "plain", ("\n",), request.prefix, "plain", notes)


def _dedent_stops(def_indent: str) -> tuple[str, ...]:
    """A new statement at the def's indentation ends a body in every style."""
    return tuple(f"\n{def_indent}{word}" for word in ("def ", "class ", "@", "if __name__"))


def _chat_prompt(context: BodyContext, repair: str, model: ModelPromptInfo, stops, notes,
                 calls: tuple[str, ...] = ()):
    """The model's own template around one user turn; the assistant's turn is opened on a code
    block that ends where the body starts, so the reply continues with the body. The tests'
    calls go in the user's turn: as comments at the end of the opened block, the model took them
    for the end of the code and closed the block at once (boltons' ``floor``, 3 of 3)."""
    name = context.site.qualname.rsplit(".", 1)[-1]
    once = not context.whole and context.opening is not None
    if once:
        shown, opening = context.above, context.opening + repair
        instruction = CHAT_INSTRUCTION_ABOVE.format(name=name)
        notes = notes + ("chat: the code above is shown once; the reply opens on the function",)
    else:
        shown = opening = context.code + repair
        instruction = CHAT_INSTRUCTION.format(name=name)
    if calls:  # before the code: the code stays the last block, the one the reply continues
        printed = "\n".join(_printable(line) for line in calls)
        instruction += f"\n\nThe project's tests call it like this:\n```python\n{printed}\n```"
    user = f"{instruction}\n\n```python\n{shown.rstrip()}\n```"
    rendered = render_chat(model.chat, [{"role": "user", "content": user}], model.name)
    chat_stops = ("\n```",) + tuple(t for t in (model.chat.eos_token,) if t)
    return Prompt(rendered + "```python\n" + opening, "chat", chat_stops + stops, opening, "chat",
                  notes, context.tokens, context.site)


def _printable(line: str) -> str:
    """A line of test output as a comment can hold it: control and undecodable characters escaped
    (a test may print binary), cut to ``REPAIR_LINE_CHARS``."""
    text = "".join(ch if ch.isprintable() or ch == "\t" else ch.encode("unicode_escape").decode()
                   for ch in line.replace("\ufffd", "?"))
    return text if len(text) <= REPAIR_LINE_CHARS else text[:REPAIR_LINE_CHARS - 3] + "..."


def _test_calls_comment(lines: tuple[str, ...], indent: str) -> str:
    """The comment block that shows how the project's tests call the function."""
    shown = ["The project's tests call it like this:"] + [f"    {_printable(line)}" for line in lines]
    return "".join(f"{indent}# {line}\n" for line in shown)


def _repair_comment(hint: RepairHint, indent: str) -> str:
    """The comment block a repair adds where the body starts."""
    body = [line for line in textwrap.dedent(hint.body).splitlines() if line.strip()]
    if len(body) > REPAIR_BODY_LINES:
        body = body[:REPAIR_BODY_LINES] + ["..."]
    failure = [line for line in hint.failure.splitlines() if line.strip()] or ["(no message)"]
    if len(failure) > REPAIR_FAILURE_LINES:  # the assertion's first lines say the most
        failure = failure[:REPAIR_FAILURE_LINES] + ["..."]
    lines = (["This body failed a test:"] + [f"    {_printable(line)}" for line in body]
             + ["The test said:"] + [f"    {_printable(line)}" for line in failure]
             + ["A corrected body:"])
    return "".join(f"{indent}# {line}\n" for line in lines)
