"""The vocabulary side of a loaded llama.cpp model: text to tokens and back, and which tokens are
control tokens (FIM markers, end of generation), which prompts and sampling depend on."""

from __future__ import annotations

import ctypes

from ..prompts import TemplateHints


class LlamaVocabulary:
    """Mixed into ``LlamaCppModel``: needs its ``llama`` (the bindings), ``vocab`` and ``n_vocab``."""

    llama: object  # the llama_cpp bindings, set by the model when it loads
    vocab: object
    n_vocab: int

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 16
        buf = (self.llama.llama_token * size)()
        n = self.llama.llama_tokenize(self.vocab, data, len(data), buf, size, False, special)
        if n < 0:
            size = -n
            buf = (self.llama.llama_token * size)()
            n = self.llama.llama_tokenize(self.vocab, data, len(data), buf, size, False, special)
        return list(buf[:n])

    def token_bytes(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.llama.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.llama.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def is_special_token(self, text: str) -> bool:
        """Whether ``text`` is one control token of this vocabulary (e.g. a FIM marker)."""
        tokens = self.tokenize(text, special=True)
        if len(tokens) != 1:
            return False
        attr = self.llama.llama_vocab_get_attr(self.vocab, tokens[0])
        return bool(attr & (self.llama.LLAMA_TOKEN_ATTR_CONTROL | self.llama.LLAMA_TOKEN_ATTR_USER_DEFINED))

    def template_hints(self, markers) -> TemplateHints:
        """The markers that are single control tokens here, plus the FIM tokens the GGUF
        declares (``fim_marker_texts``)."""
        special = {m for m in markers if self.is_special_token(m)} | self.fim_marker_texts()
        return TemplateHints(special=frozenset(special), source="the model's vocabulary")

    def fim_marker_texts(self) -> set[str]:
        """Texts of the FIM tokens the GGUF declares (metadata or llama.cpp's own detection),
        without SentencePiece's word marker: CodeLlama's are "▁<PRE>", "▁<SUF>", "▁<MID>"."""
        found = set()
        for getter in ("llama_vocab_fim_pre", "llama_vocab_fim_suf", "llama_vocab_fim_mid"):
            token = getattr(self.llama, getter)(self.vocab)
            if token is not None and 0 <= token < self.n_vocab:
                text = self.llama.llama_vocab_get_text(self.vocab, token)
                found.add(text.decode("utf-8", "replace").lstrip("\u2581").strip())
        return found

    def is_control(self, token: int) -> bool:
        attr = self.llama.llama_vocab_get_attr(self.vocab, token)
        return bool(attr & self.llama.LLAMA_TOKEN_ATTR_CONTROL)
