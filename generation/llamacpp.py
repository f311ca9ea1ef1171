"""llama.cpp in-process backend: k candidates from one prompt in one batched decode.

The prompt is evaluated once, its KV cells are shared with every sequence
(``llama_memory_seq_cp``), and each step decodes one token for every unfinished sequence in a single
``llama_batch``. Sampling (temperature, top-p) and per-token log-probabilities are computed here from
the logits, with one seeded generator per candidate, so results are reproducible for a given seed.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .types import Completion, GenerationResult, SamplingParams

CANDIDATE_POOL = 128  # sampling considers the most likely tokens only; the rest carry ~no mass


class BackendError(RuntimeError):
    pass


def _llama():
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendError(
            "llama-cpp-python is not installed; install budgetpass with the cpu extra: "
            "pip install 'budgetpass[cpu]'"
        ) from exc
    if not os.environ.get("BUDGETPASS_LLAMA_VERBOSE"):
        llama_cpp.llama_log_set(_QUIET, ctypes.c_void_p(0))
    return llama_cpp


def _quiet(level, text, user_data):  # llama.cpp's log lines would garble the CLI's output
    return None


try:
    from llama_cpp import llama_log_callback as _callback_type

    _QUIET = _callback_type(_quiet)
except ImportError:  # pragma: no cover
    _QUIET = None


@dataclass
class _Sequence:
    index: int
    rng: np.random.Generator
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    text: str = ""
    finish_reason: str | None = None


class LlamaCppModel:
    """One loaded GGUF model. Not thread-safe: one ``generate`` at a time (a lock enforces it)."""

    def __init__(self, path: str | Path, n_threads: int | None = None):
        self.llama = _llama()
        lib = self.llama
        lib.llama_backend_init()
        self.path = Path(path)
        params = lib.llama_model_default_params()
        self.model = lib.llama_model_load_from_file(str(self.path).encode(), params)
        if not self.model:
            raise BackendError(f"llama.cpp could not load {self.path} (not a GGUF model it supports?)")
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = lib.llama_vocab_n_tokens(self.vocab)
        self.n_params = int(lib.llama_model_n_params(self.model))
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._ctx = None
        self._ctx_size = (0, 0)  # (n_ctx, n_seq_max)
        self._lock = threading.Lock()
        self._cached_prompt: list[int] = []  # tokens whose KV cells sequence 0 holds, from position 0

    @property
    def busy(self) -> bool:
        """Whether a ``generate`` runs now (a caller may prefer not to queue behind it)."""
        return self._lock.locked()

    def close(self) -> None:
        if self._ctx:
            self.llama.llama_free(self._ctx)
            self._ctx = None
        if self.model:
            self.llama.llama_model_free(self.model)
            self.model = None

    def __del__(self):  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass

    # --- vocabulary ---------------------------------------------------------------------------

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

    # --- generation ---------------------------------------------------------------------------

    def _context(self, n_ctx: int, n_seq: int):
        lib = self.llama
        have_ctx, have_seq = self._ctx_size
        if self._ctx and have_ctx >= n_ctx and have_seq >= n_seq:
            return self._ctx
        if self._ctx:
            lib.llama_free(self._ctx)
            self._ctx = None
        n_ctx = max(n_ctx, have_ctx, 2048)
        n_seq = max(n_seq, have_seq)
        params = lib.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = 512
        params.n_ubatch = 512
        params.n_seq_max = n_seq
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        params.kv_unified = True
        ctx = lib.llama_init_from_model(self.model, params)
        if not ctx:
            raise BackendError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self._ctx, self._ctx_size = ctx, (n_ctx, n_seq)
        self._cached_prompt = []
        return ctx

    def generate(
        self,
        prompt: str,
        n: int,
        params: SamplingParams,
        on_token: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """``n`` completions of ``prompt``. ``on_token`` gets the running count of generated tokens;
        ``should_stop`` is polled every step and ends all sequences as ``cancelled``."""
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            return self._generate(prompt, n, params, on_token, should_stop)

    def _generate(self, prompt, n, params, on_token, should_stop) -> GenerationResult:
        lib = self.llama
        start = time.monotonic()
        prompt_tokens = self.tokenize(prompt, special=True)
        if not prompt_tokens:
            raise ValueError("empty prompt")
        n_prompt = len(prompt_tokens)
        ctx = self._context(n_prompt + n * params.max_tokens + 8, n)
        n_ctx = self._ctx_size[0]
        if n_prompt + params.max_tokens > n_ctx:
            raise BackendError(f"prompt of {n_prompt} tokens does not fit a {n_ctx}-token context")
        mem = lib.llama_get_memory(ctx)
        # Keystroke after keystroke the prompt changes only near its end: keep the KV cells of the
        # longest common token prefix with the previous prompt and evaluate only the rest.
        reuse = 0
        for old, new in zip(self._cached_prompt, prompt_tokens[:-1]):
            if old != new:
                break
            reuse += 1
        self._cached_prompt = []
        if reuse:
            for s in range(1, self._ctx_size[1]):
                lib.llama_memory_seq_rm(mem, s, -1, -1)
            lib.llama_memory_seq_rm(mem, 0, reuse, -1)
        else:
            lib.llama_memory_clear(mem, True)
        batch = lib.llama_batch_init(max(512, n), 0, 1)
        try:
            # Prompt, once, for sequence 0; logits only at its last position.
            for begin in range(reuse, n_prompt, 512):
                chunk = prompt_tokens[begin : begin + 512]
                batch.n_tokens = len(chunk)
                for j, token in enumerate(chunk):
                    batch.token[j] = token
                    batch.pos[j] = begin + j
                    batch.n_seq_id[j] = 1
                    batch.seq_id[j][0] = 0
                    batch.logits[j] = begin + j == n_prompt - 1
                self._decode(ctx, batch)
            first_row = self._row(ctx, -1).copy()
            self._cached_prompt = prompt_tokens
            prompt_seconds = time.monotonic() - start
            for s in range(1, n):
                lib.llama_memory_seq_cp(mem, 0, s, -1, -1)
            seqs = [_Sequence(s, np.random.default_rng([params.seed, s])) for s in range(n)]
            for seq in seqs:
                self._accept(seq, first_row, params)
            generated = n
            if on_token:
                on_token(generated)
            step = 0
            while True:
                active = [s for s in seqs if s.finish_reason is None]
                if not active:
                    break
                if should_stop and should_stop():
                    for seq in active:
                        seq.finish_reason = "cancelled"
                    break
                batch.n_tokens = len(active)
                for j, seq in enumerate(active):
                    batch.token[j] = seq.tokens[-1]
                    batch.pos[j] = n_prompt + step
                    batch.n_seq_id[j] = 1
                    batch.seq_id[j][0] = seq.index
                    batch.logits[j] = True
                self._decode(ctx, batch)
                step += 1
                for j, seq in enumerate(active):
                    self._accept(seq, self._row(ctx, j), params)
                    if seq.finish_reason is not None:  # sequence 0 keeps the prompt for reuse
                        lib.llama_memory_seq_rm(mem, seq.index, n_prompt if seq.index == 0 else -1,
                                                -1)
                generated += len(active)
                if on_token:
                    on_token(generated)
        finally:
            lib.llama_batch_free(batch)
        completions = tuple(
            Completion(s.index, s.text, tuple(s.tokens), tuple(s.logprobs), s.finish_reason or "stop")
            for s in seqs
        )
        return GenerationResult(completions, n_prompt, time.monotonic() - start, prompt_seconds)

    def _decode(self, ctx, batch) -> None:
        rc = self.llama.llama_decode(ctx, batch)
        if rc != 0:
            raise BackendError(f"llama_decode failed with code {rc} (context full?)")

    def _row(self, ctx, i: int) -> np.ndarray:
        ptr = self.llama.llama_get_logits_ith(ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _accept(self, seq: _Sequence, logits: np.ndarray, params: SamplingParams) -> None:
        """Sample the next token for ``seq`` and decide whether it is finished."""
        token, logprob = sample_token(logits, params, seq.rng)
        if self.llama.llama_vocab_is_eog(self.vocab, token):
            seq.finish_reason = "stop"
            return
        seq.tokens.append(token)
        seq.logprobs.append(logprob)
        piece = self.token_bytes(token)
        if not piece and self.is_control(token):
            seq.finish_reason = "stop"  # a control token that is not end-of-generation
            seq.tokens.pop()
            seq.logprobs.pop()
            return
        seq.data += piece
        seq.text = seq.data.decode("utf-8", "replace")
        for stop in params.stop:
            at = seq.text.find(stop)
            if at >= 0:
                seq.text = seq.text[:at]
                seq.finish_reason = "stop"
                return
        if len(seq.tokens) >= params.max_tokens:
            seq.finish_reason = "length"

    def is_control(self, token: int) -> bool:
        attr = self.llama.llama_vocab_get_attr(self.vocab, token)
        return bool(attr & self.llama.LLAMA_TOKEN_ATTR_CONTROL)


def sample_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> tuple[int, float]:
    """(token, the model's log-probability of it at temperature 1)."""
    top = float(logits.max())
    log_norm = top + float(np.log(np.exp(logits - top, dtype=np.float64).sum()))
    if params.temperature <= 0:
        token = int(logits.argmax())
        return token, float(logits[token]) - log_norm
    pool = min(params.top_k or CANDIDATE_POOL, CANDIDATE_POOL, logits.shape[0])
    ids = np.argpartition(logits, -pool)[-pool:]
    ids = ids[np.argsort(-logits[ids], kind="stable")]
    scaled = (logits[ids].astype(np.float64) - top) / params.temperature
    # Mass relative to the whole vocabulary at this temperature, so top-p keeps its meaning.
    total = np.exp((logits.astype(np.float64) - top) / params.temperature).sum()
    probs = np.exp(scaled) / total
    if params.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), params.top_p) + 1)
        ids, probs = ids[:keep], probs[:keep]
    probs = probs / probs.sum()
    token = int(ids[rng.choice(len(ids), p=probs)])
    return token, float(logits[token]) - log_norm
