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

The context is bounded by tokens and chosen by relevance (``context_for``), with its stable parts
(imports, signatures) first so consecutive requests share their prompt's beginning.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .source import FunctionSite, SourceError, locate_function, parse_python, without_stub_bodies


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

# --- the builder ------------------------------------------------------------------------------

PROMPT_STYLES = ("auto", "fim", "chat", "plain")
# What ``auto`` uses for a whole body when the model has a chat template: on HumanEval (all 164,
# bench/results/prompt_styles.json) the bundled Instruct models answer far better through their
# own chat template than through FIM.
AUTO_BODY_STYLE = "chat"
# Tokens of code context around a whole body. A function deep in a large module then costs about
# what one in a small file does before the first candidate token (bench/prompt_styles.py measures
# the ratio); HumanEval-sized files fit whole.
DEFAULT_MAX_CONTEXT_TOKENS = 1024
CHAT_INSTRUCTION = ("Complete the Python function `{name}` below: write the rest of its body. "
                    "Reply with the code in one ```python block.")


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
class BodyRequest:
    """A whole body for ``function`` in ``text`` (a file or an editor's buffer). ``path`` and
    ``project`` let the context show signatures from the project modules the file imports.
    ``cursor``: inline completion's offset, used when ``text`` does not parse mid-keystroke."""

    text: str
    function: str
    path: Path | None = None
    project: Path | None = None
    cursor: int | None = None


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
    # A chat prompt holds the code twice (the user's turn, the prefilled reply): half each.
    code, site, used, notes = body_context(
        request, model, max_context_tokens // 2 if chosen == "chat" else max_context_tokens)
    stops = _dedent_stops(site.def_indent)
    if chosen == "chat":
        try:
            return _chat_prompt(code, site, model, stops, used, notes)
        except PromptError as exc:
            if style != "auto":
                raise
            chosen = "fim" if model.fim.is_fim else "plain"
            notes = notes + (f"auto: {exc}; fell back to {chosen}",)
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


def _chat_prompt(code: str, site: FunctionSite, model: ModelPromptInfo, stops, used, notes):
    """The model's own template around one user turn; the assistant's turn is opened on a code
    block holding the code up to the body, so the reply continues with the body."""
    name = site.qualname.rsplit(".", 1)[-1]
    user = f"{CHAT_INSTRUCTION.format(name=name)}\n\n```python\n{code.rstrip()}\n```"
    rendered = render_chat(model.chat, [{"role": "user", "content": user}], model.name)
    prefill = "```python\n" + code
    chat_stops = ("\n```",) + tuple(t for t in (model.chat.eos_token,) if t)
    return Prompt(rendered + prefill, "chat", chat_stops + stops, code, "chat", notes, used, site)


# --- chat templates ---------------------------------------------------------------------------


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # As transformers' chat-template renderer defines it (Jinja2's own escapes HTML).
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise_exception(message):
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _strftime_now(format):
    from datetime import datetime

    return datetime.now().strftime(format)


_compiled: dict[str, object] = {}


def _compile(source: str):
    """Jinja2 as Hugging Face compiles chat templates: sandboxed, immutable, trimmed blocks."""
    template = _compiled.get(source)
    if template is None:
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        template = env.from_string(source)
        _compiled[source] = template
    return template


def _template_line(exc: BaseException) -> int | None:
    line = getattr(exc, "lineno", None)
    if line:
        return line
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == "<template>":
            line = lineno
    return line


def render_chat(chat: ChatTemplate, messages: list[dict], model_name: str,
                add_generation_prompt: bool = True) -> str:
    """``messages`` through the model's chat template; PromptError names the template's line."""
    from jinja2.exceptions import TemplateError

    try:
        return _compile(chat.source).render(
            messages=messages, add_generation_prompt=add_generation_prompt,
            bos_token=chat.bos_token, eos_token=chat.eos_token, tools=None)
    except (TemplateError, TypeError, ValueError, KeyError, AttributeError) as exc:
        line = _template_line(exc)
        where = f" at line {line}" if line else ""
        origin = chat.origin or "its metadata"
        raise PromptError(f"the chat template of model {model_name} ({origin}) failed to render"
                          f"{where}: {exc}; set the prompt style to fim or plain") from None


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}


def gguf_metadata(path: str | Path, keys: set[str]) -> dict:
    """The GGUF header's values for ``keys`` (strings and integers; for an array of strings, the
    list). Reads the header alone, skipping what it does not need: gguf's GGUFReader parses every
    token of a 150k vocabulary first (10+ s on this CPU); this takes a fraction of a second."""
    import mmap
    import struct

    found: dict = {}
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"GGUF":
            raise PromptError(f"{path} is not a GGUF file")
        pos = 8
        _n_tensors, n_kv = struct.unpack_from("<QQ", m, pos)
        pos += 16

        def string(at):
            (n,) = struct.unpack_from("<Q", m, at)
            return m[at + 8:at + 8 + n], at + 8 + n

        def skip(kind, at, keep):
            if kind == 8:
                value, at = string(at)
                return value.decode("utf-8", "replace"), at
            if kind == 9:
                elem, count = struct.unpack_from("<IQ", m, at)
                at += 12
                if elem in _GGUF_SCALARS and not keep:
                    return None, at + count * struct.calcsize(_GGUF_SCALARS[elem])
                items = []
                for _ in range(count):
                    value, at = skip(elem, at, keep)
                    if keep:
                        items.append(value)
                return items, at
            fmt = _GGUF_SCALARS[kind]
            return struct.unpack_from(fmt, m, at)[0], at + struct.calcsize(fmt)

        for _ in range(n_kv):
            key, pos = string(pos)
            key = key.decode("utf-8", "replace")
            (kind,) = struct.unpack_from("<I", m, pos)
            wanted = key in keys
            value, pos = skip(kind, pos + 4, wanted)
            if wanted:
                found[key] = value
            if len(found) == len(keys):
                break
    return found


def chat_template_from_gguf(path: str | Path) -> ChatTemplate | None:
    """The GGUF's ``tokenizer.chat_template`` and its BOS/EOS token texts (None: it has none).
    Works on vocabulary-only files: only metadata is read."""
    meta = gguf_metadata(path, {"tokenizer.chat_template", "tokenizer.ggml.bos_token_id",
                                "tokenizer.ggml.eos_token_id", "tokenizer.ggml.tokens"})
    source = meta.get("tokenizer.chat_template")
    if not source:
        return None
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token_text(key) -> str:
        index = meta.get(key)
        return tokens[index] if isinstance(index, int) and 0 <= index < len(tokens) else ""

    return ChatTemplate(source, token_text("tokenizer.ggml.bos_token_id"),
                        token_text("tokenizer.ggml.eos_token_id"), f"{Path(path).name} metadata")


def chat_template_from_hf(folder: str | Path) -> ChatTemplate | None:
    """A Hugging Face folder's chat template (``chat_template.jinja`` or ``tokenizer_config.json``,
    the default one when it lists several), as vLLM would use it."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    source = config.get("chat_template")
    origin = "tokenizer_config.json"
    if isinstance(source, list):
        named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
        source = named.get("default") or next(iter(named.values()), None)
    jinja = folder / "chat_template.jinja"
    if not source and jinja.is_file():
        source, origin = jinja.read_text(encoding="utf-8"), "chat_template.jinja"
    if not isinstance(source, str) or not source:
        return None

    def text(value) -> str:
        return value.get("content", "") if isinstance(value, dict) else (value or "")

    return ChatTemplate(source, text(config.get("bos_token")), text(config.get("eos_token")),
                        f"{folder.name}/{origin}")


_infos: dict[tuple, ModelPromptInfo] = {}


def prompt_info_for(opened, template: PromptTemplate) -> ModelPromptInfo:
    """``model_prompt_info`` of an ``engine.OpenedModel`` with the FIM ``template`` chosen for
    it, read once per loaded backend (every inline request asks)."""
    key = (id(opened.backend), opened.name, template.name)
    info = _infos.get(key)
    if info is None:
        info = model_prompt_info(opened.backend, opened.name, template,
                                 opened.info.get("vllm_model"))
        _infos.clear()  # one model at a time is the common case; never grows
        _infos[key] = info
    return info


def model_prompt_info(backend, name: str, fim: PromptTemplate,
                      hf_folder: str | Path | None = None) -> ModelPromptInfo:
    """The prompt facts of an opened backend: llama.cpp reads the GGUF, vLLM its Hugging Face
    folder; an OpenAI-compatible server does not say its template, so it gets none."""
    chat = None
    path = getattr(backend, "path", None)
    if hf_folder:
        chat = chat_template_from_hf(hf_folder)
    elif path is not None and str(path).endswith(".gguf"):
        chat = chat_template_from_gguf(path)
    tokenize = getattr(backend, "tokenize", None)
    count = (lambda text: len(tokenize(text, special=False))) if callable(tokenize) else None
    return ModelPromptInfo(name, fim, chat, count)


# --- context of bounded size ------------------------------------------------------------------


def body_context(request: BodyRequest, model: ModelPromptInfo,
                 budget: int) -> tuple[str, FunctionSite, int, tuple[str, ...]]:
    """(code up to the body, the body's site, its tokens, notes): the file's imports, the enclosing
    classes, signatures and docstrings of what the body likely uses (same file; project modules
    the file imports), then the code just above, within ``budget`` tokens. Other stubs' bodies
    never appear (a small model imitates them)."""
    try:
        site = locate_function(request.text, request.function)
    except SourceError:
        if request.cursor is None:
            raise
        return _window_context(request, model, budget)
    text = without_stub_bodies(request.text, keep=request.function)
    site = locate_function(text, request.function)
    tree = parse_python(text)
    return _Context(text, tree, site, request, model, budget).build()


def _window_context(request: BodyRequest, model: ModelPromptInfo, budget: int):
    """A buffer that does not parse: the lines above the cursor that fit, up to the cursor line."""
    text = request.text
    line_start = text.rfind("\n", 0, request.cursor) + 1
    lines = text[:line_start].splitlines(keepends=True)
    name = request.function.rsplit(".", 1)[-1]
    def_re = re.compile(rf"^([ \t]*)(async[ \t]+)?def[ \t]+{re.escape(name)}\b")
    def_indent = next((m.group(1) for ln in reversed(lines) if (m := def_re.match(ln))), "")
    typed = text[line_start:request.cursor]
    body_indent = typed if typed.strip() == "" and len(typed) > len(def_indent) else def_indent + "    "
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = model.tokens(line)
        if used + cost > budget and kept:
            break
        kept.insert(0, line)
        used += cost
    site = FunctionSite.bare(request.function, def_indent, body_indent)
    return "".join(kept), site, used, ("the buffer does not parse: context is the lines above",)


def _stmt_start(node) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _summary(node, lines: list[str], indent: str = "") -> str:
    """A def's or class's signature and docstring, without its body."""
    start = _stmt_start(node)
    body = node.body
    doc = ast.get_docstring(node, clean=False) is not None
    header_end = body[0].lineno - 1 if body else node.end_lineno
    head = "".join(lines[start - 1:header_end])
    if not head.rstrip().endswith(":"):  # body on the signature's line: keep the line whole
        return "".join(lines[start - 1:node.lineno])
    if doc:
        head += "".join(lines[body[0].lineno - 1:body[0].end_lineno])
        if isinstance(node, ast.ClassDef):
            for item in body[1:]:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    head += _summary(item, lines)
        return head
    inner = lines[body[0].lineno - 1] if body else indent + "    "
    pad = inner[: len(inner) - len(inner.lstrip())]
    if isinstance(node, ast.ClassDef):
        methods = [_summary(item, lines) for item in body
                   if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))]
        return head + ("".join(methods) if methods else f"{pad}...\n")
    return head + f"{pad}...\n"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", text))


class _Context:
    """One body's context, assembled from line ranges of the (stub-free) file."""

    def __init__(self, text, tree, site, request, model, budget):
        self.text, self.tree, self.site, self.request = text, tree, site, request
        self.model, self.budget = model, budget
        self.lines = text.splitlines(keepends=True)

    def build(self):
        lines, site = self.lines, self.site
        chain = self._chain()
        func = chain[-1][1]
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        header = self.text[offsets[_stmt_start(func) - 1]:site.body_start]
        imports = [n for n in self.tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        first = self.tree.body[0] if self.tree.body else None
        has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
            isinstance(first.value.value, str)
        if has_doc:
            imports.insert(0, first)  # the module's docstring leads, as in the file
        import_lines = {i for n in imports for i in range(n.lineno, n.end_lineno + 1)}
        import_text = "".join(lines[i - 1] for i in sorted(import_lines))
        if has_doc and len(imports) > 1:
            doc_end = first.end_lineno
            import_text = "".join(lines[:doc_end]) + "\n" + import_text[len("".join(lines[:doc_end])):]
        class_heads = [self._class_head(node) for _, node in chain[:-1]]
        used = self.model.tokens(import_text) + self.model.tokens(header) + sum(
            self.model.tokens(h) for h in class_heads)
        notes: list[str] = []
        if used > self.budget:
            notes.append(f"the imports, enclosing classes and signature alone take {used} tokens "
                         f"(budget {self.budget})")
        wanted = _words(header) - {"self", "cls", "def", "return", "None"}
        window_budget = max(0, (self.budget - used) * 3 // 4)
        # The code just above, nearest first, statement by statement, innermost scope first.
        windows: list[str] = []
        cut_off: list = []
        spent = 0
        full = True
        for depth in range(len(chain) - 1, -1, -1):
            scope, node = chain[depth]
            before = [s for s in scope if s.end_lineno < _stmt_start(node)]
            if depth and before and ast.get_docstring(chain[depth - 1][1], clean=False) is not None:
                before = before[1:]  # the class's docstring is in its header already
            start_line = _stmt_start(node)
            kept = start_line
            while full and before:
                stmt = before.pop()
                piece = "".join(lines[i - 1] for i in range(_stmt_start(stmt), kept)
                                if i not in import_lines)
                cost = self.model.tokens(piece)
                if spent + cost > window_budget:
                    full = False
                    cut_off.append(stmt)
                    break
                spent += cost
                kept = _stmt_start(stmt)
            cut_off.extend(before)
            if full:  # the whole scope fits: its leading blank lines and comments too
                cls = chain[depth - 1][1] if depth else None
                kept = 1 if cls is None else 1 + (
                    cls.body[0].end_lineno if ast.get_docstring(cls, clean=False) is not None
                    else cls.body[0].lineno - 1)
            windows.insert(0, "".join(lines[i - 1] for i in range(kept, start_line)
                                      if i not in import_lines))
        used += spent
        signatures = self._signatures(cut_off, wanted, self.budget - used)
        used += self.model.tokens(signatures)
        parts = [import_text.rstrip("\n") + "\n\n\n" if import_text else "", signatures]
        for depth, window in enumerate(windows):
            parts.append(window)
            if depth < len(class_heads):
                parts.append(class_heads[depth])
        code = re.sub(r"\n{4,}", "\n\n\n", "".join(parts)) + header
        return code, site, used, tuple(notes)

    def _chain(self):
        """[(statements of the scope, the node in it)] from the module down to the function."""
        chain, scope = [], self.tree.body
        target = self.site.def_line + 1  # the locator's lines are 0-based, ast's 1-based
        while True:
            for node in scope:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                        node.lineno <= target <= node.end_lineno:
                    chain.append((scope, node))
                    if node.lineno == target and not isinstance(node, ast.ClassDef):
                        return chain
                    scope = node.body
                    break
            else:
                raise SourceError(f"{self.site.qualname}: not found at line {target}")

    def _class_head(self, node: ast.ClassDef) -> str:
        first = node.body[0]
        end = first.end_lineno if ast.get_docstring(node, clean=False) is not None \
            else first.lineno - 1
        return "".join(self.lines[_stmt_start(node) - 1:end])

    def _signatures(self, cut_off, wanted: set[str], budget: int) -> str:
        """Signatures and docstrings of the names the body likely uses that the window left out:
        this file's definitions, then those the file imports from project modules."""
        found: list[tuple[str, str]] = []
        for node in cut_off:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                    node.name in wanted:
                found.append((node.name, _summary(node, self.lines)))
        found += self._stub_signatures(wanted)
        found += self._project_signatures(wanted)
        out, spent = [], 0
        for _, text in found:
            cost = self.model.tokens(text)
            if spent + cost > budget:
                continue
            out.append(text if text.endswith("\n") else text + "\n")
            spent += cost
        return "".join(t + "\n\n" for t in out)

    def _stub_signatures(self, wanted: set[str]) -> list[tuple[str, str]]:
        """Other stubs of the file are left out of the code; the ones the signature or docstring
        mention are shown by signature and docstring only."""
        if self.text == self.request.text:
            return []
        lines = self.request.text.splitlines(keepends=True)
        kept = {n.name for n in self.tree.body if hasattr(n, "name")}
        return [(node.name, _summary(node, lines)) for node in parse_python(self.request.text).body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name in wanted and node.name not in kept]

    def _project_signatures(self, wanted: set[str]) -> list[tuple[str, str]]:
        """``from module import name`` of a project module, for the names the signature or
        docstring mentions: their summaries."""
        path, project = self.request.path, self.request.project
        if path is None or project is None:
            return []
        found = []
        for node in self.tree.body:
            if not isinstance(node, ast.ImportFrom):
                continue
            names = {a.name for a in node.names} & wanted
            if not names:
                continue  # names the signature and docstring never mention: not worth a parse
            module = _module_file(Path(path), Path(project), node)
            if module is None:
                continue
            rel = module.relative_to(project).as_posix()
            for name, summary in _module_summaries(module).items():
                if name in names:
                    found.append((name, f"# {rel}\n{summary}"))
        return found


@functools.lru_cache(maxsize=64)
def _summaries_of(path: Path, mtime: float, size: int) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return {}
    lines = text.splitlines(keepends=True)
    return {node.name: _summary(node, lines) for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _module_summaries(path: Path) -> dict[str, str]:
    """Top-level definitions' summaries of a project module, parsed once per version of it."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _summaries_of(path, stat.st_mtime, stat.st_size)


def _module_file(path: Path, project: Path, node: ast.ImportFrom) -> Path | None:
    """The project file an ``from X import ...`` names (relative imports included), if any."""
    parts = (node.module or "").split(".") if node.module else []
    if node.level:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        roots = [base]
    else:
        roots = [project, project / "src"]
    for root in roots:
        candidate = root.joinpath(*parts) if parts else root
        for option in (candidate.with_suffix(".py") if parts else None,
                       candidate / "__init__.py"):
            if option is not None and option.is_file():
                try:
                    option.resolve().relative_to(project.resolve())
                except ValueError:
                    continue
                return option
    return None


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
