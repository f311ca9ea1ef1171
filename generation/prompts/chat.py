"""A model's own chat template: read from a GGUF's metadata or a Hugging Face folder's
``tokenizer_config.json``, rendered by sandboxed Jinja2 as Hugging Face does."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from .base import ChatTemplate, ModelPromptInfo, PromptError
from .templates import PromptTemplate


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
