"""llama.cpp in-process backend: k candidates from one prompt in one batched decode.

The prompt is evaluated once, its KV cells are shared with every sequence
(``llama_memory_seq_cp``), and each step decodes one token for every unfinished sequence in a single
``llama_batch``. Sampling (temperature, top-p) and per-token log-probabilities are computed here from
the logits (``sampler.py``), with one seeded generator per candidate, so results are reproducible
for a given seed. A candidate that runs far past its siblings or loops is cut (``runaway.py``): its
cells are freed and the batch goes on without it.
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

from ..runaway import RunawayGuard
from ..types import Completion, CompletionCallback, GenerationResult, SamplingParams
from .base import BackendError
from .llamacpp_vocab import LlamaVocabulary
from .sampler import sample_rows

PROMPT_CHUNK = 512
MIN_CONTEXT = 4096  # tokens; the KV cache of 4096 tokens is ~50 MB for the 0.5B model
MIN_SEQUENCES = 16
ABORT_POLL_SECONDS = 0.01  # how often should_stop() is asked while a decode runs


# llama.cpp's CPU threads (OpenMP) spin between steps by default. Beside one busy process (a
# candidate's tests while the others decode, the editor) a 2-thread decode on 2 cores is 1.33x
# faster with threads that wait instead; alone on the machine it is 0.89x as fast
# (bench/results/decode_contention.json). budgetpass rarely decodes alone, so it waits; set
# OMP_WAIT_POLICY=ACTIVE to spin. libgomp reads it once, as it loads: before llama_cpp's import.
DECODE_WAIT_POLICY = "PASSIVE"


def _llama():
    os.environ.setdefault("OMP_WAIT_POLICY", DECODE_WAIT_POLICY)
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
    announced: bool = False  # on_complete has had it

    def completion(self) -> Completion:
        return Completion(self.index, self.text, tuple(self.tokens), tuple(self.logprobs),
                          self.finish_reason or "stop")


def _announce(seqs: list[_Sequence], on_complete: CompletionCallback | None) -> None:
    """Hand every sequence that has just finished (not a cancelled one) to ``on_complete``."""
    if on_complete is None:
        return
    for seq in seqs:
        if seq.finish_reason in ("stop", "length", "runaway") and not seq.announced:
            seq.announced = True
            on_complete(seq.completion())


class LlamaCppModel(LlamaVocabulary):
    """One loaded GGUF model. Not thread-safe: one ``generate`` at a time (a lock enforces it)."""

    name = "llama.cpp"  # the backend, for reports (see base.Backend)

    def __init__(self, path: str | Path, n_threads: int | None = None, vocab_only: bool = False):
        """``vocab_only``: load the tokenizer alone (vocabulary GGUFs, template detection)."""
        self.llama = _llama()
        lib = self.llama
        lib.llama_backend_init()
        self.path = Path(path)
        params = lib.llama_model_default_params()
        params.vocab_only = vocab_only
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
        self._cached_prompt: list[int] = []  # the prompt whose KV sequence 0 holds
        # Cancellation inside a decode: ggml calls abort_callback(data) between graph nodes. A
        # Python callback there would take the GIL ~800 times per step (measurably slower, and
        # stalled by any busy Python thread), so the callback is libc's strlen reading a one-byte
        # flag (0: go on, 1: abort) that a watcher thread sets when should_stop() turns true.
        self._abort_flag = ctypes.create_string_buffer(2)
        self._abort_callback = self.llama.ggml_abort_callback(
            ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value)

    def close(self) -> None:
        """Free the model; waits for a running ``generate`` (cancel it first to wait less)."""
        with self._lock:
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

    # --- generation ---------------------------------------------------------------------------

    def _context(self, n_ctx: int, n_seq: int):
        lib = self.llama
        have_ctx, have_seq = self._ctx_size
        if self._ctx and have_ctx >= n_ctx and have_seq >= n_seq:
            return self._ctx
        if self._ctx:
            lib.llama_free(self._ctx)
            self._ctx = None
        self._cached_prompt = []
        # Re-creating the context drops the prompt cache: grow in big steps, and allow many
        # sequences from the start (with a unified KV cache that costs nothing).
        n_ctx = max(n_ctx, 2 * have_ctx, MIN_CONTEXT)
        n_seq = max(n_seq, have_seq, MIN_SEQUENCES)
        params = lib.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = PROMPT_CHUNK
        params.n_ubatch = PROMPT_CHUNK
        params.n_seq_max = n_seq
        params.n_threads = self.n_threads
        params.n_threads_batch = self.n_threads
        params.kv_unified = True
        # ggml polls this between graph nodes: a cancelled request stops inside a long decode.
        params.abort_callback = self._abort_callback
        params.abort_callback_data = ctypes.cast(self._abort_flag, ctypes.c_void_p)
        ctx = lib.llama_init_from_model(self.model, params)
        if not ctx:
            raise BackendError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self._ctx, self._ctx_size = ctx, (n_ctx, n_seq)
        return ctx

    @property
    def _aborted(self) -> bool:
        return self._abort_flag.raw[0] != 0

    def _watch(self, should_stop: Callable[[], bool], done: threading.Event) -> None:
        """Runs beside a request: raises the abort flag as soon as ``should_stop()`` is true."""
        while not done.wait(ABORT_POLL_SECONDS):
            try:
                stop = should_stop()
            except Exception:  # a failing callback cancels rather than crashing the thread
                stop = True
            if stop:
                self._abort_flag[0] = 1
                return

    def reset(self) -> None:
        """Forget the cached prompt, so the next request evaluates its whole prompt."""
        with self._lock:
            self._cached_prompt = []
            if self._ctx:
                self.llama.llama_memory_clear(self.llama.llama_get_memory(self._ctx), True)

    @property
    def busy(self) -> bool:
        """Whether a ``generate`` runs now (a caller may prefer not to queue behind it)."""
        return self._lock.locked()

    def generate(
        self,
        prompt: str,
        n: int,
        params: SamplingParams,
        on_token: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_complete: CompletionCallback | None = None,
    ) -> GenerationResult:
        """``n`` completions of ``prompt``. ``on_token`` gets the running count of generated tokens;
        ``should_stop`` is polled every step (and inside long decodes) and ends all sequences as
        ``cancelled``; ``on_complete`` gets each candidate in the step it finishes, while the
        others still decode."""
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            if not self.model:
                raise BackendError("the llama.cpp model was closed; open it again")
            self._abort_flag[0] = 0
            done = threading.Event()
            watcher = None
            if should_stop is not None:
                watcher = threading.Thread(target=self._watch, args=(should_stop, done),
                                           daemon=True, name="budgetpass-cancel")
                watcher.start()
            try:
                return self._generate(prompt, n, params, on_token, should_stop, on_complete)
            finally:
                done.set()
                if watcher is not None:
                    watcher.join()  # so it cannot raise the flag during the next request
                self._abort_flag[0] = 0

    def score(self, prompt: str, continuation: str) -> list[float]:
        """Log-probability (T = 1) of each token of ``continuation`` after ``prompt``: one
        prompt-evaluation pass, no sampling (Coder-Reviewer's log p(docstring | code))."""
        with self._lock:
            context = self.tokenize(prompt, special=True)
            target = self.tokenize(continuation, special=False)
            if not context or not target:
                return []
            tokens = context + target
            ctx = self._context(len(tokens) + 8, 1)
            lib = self.llama
            lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
            self._cached_prompt = []  # sequence 0 now holds this text, not a generation prompt
            self._abort_flag[0] = 0
            first = len(context) - 1  # the logits here predict the continuation's first token
            logprobs: list[float] = []
            batch = lib.llama_batch_init(PROMPT_CHUNK, 0, 1)
            try:
                for begin in range(0, len(tokens) - 1, PROMPT_CHUNK):
                    chunk = tokens[begin:min(begin + PROMPT_CHUNK, len(tokens) - 1)]
                    batch.n_tokens = len(chunk)
                    wanted = 0
                    for j, token in enumerate(chunk):
                        batch.token[j] = token
                        batch.pos[j] = begin + j
                        batch.n_seq_id[j] = 1
                        batch.seq_id[j][0] = 0
                        batch.logits[j] = begin + j >= first
                        wanted += begin + j >= first
                    if not self._decode(ctx, batch):
                        raise BackendError("scoring was cancelled")
                    if wanted:
                        rows = np.asarray(self._rows(ctx, wanted), dtype=np.float64)
                        tops = rows.max(axis=1)
                        norms = tops + np.log(np.exp(rows - tops[:, None]).sum(axis=1))
                        nexts = tokens[begin + len(chunk) - wanted + 1:begin + len(chunk) + 1]
                        logprobs += [float(rows[r, t] - norms[r]) for r, t in enumerate(nexts)]
            finally:
                lib.llama_batch_free(batch)
                lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
            return logprobs

    def _reuse_prefix(self, mem, prompt_tokens: list[int], n_seq: int) -> int:
        """Keep the KV of the longest prefix shared with the previous prompt; return its length.

        Sequence 0 holds the previous prompt (its generated tokens and the other sequences are
        dropped). At least the last prompt token is evaluated again: its logits start sampling.
        """
        lib = self.llama
        cached = self._cached_prompt
        self._cached_prompt = []
        keep = 0
        limit = min(len(cached), len(prompt_tokens) - 1)
        while keep < limit and cached[keep] == prompt_tokens[keep]:
            keep += 1
        if keep == 0:
            lib.llama_memory_clear(mem, True)
            return 0
        for s in range(1, n_seq):
            lib.llama_memory_seq_rm(mem, s, -1, -1)
        if not lib.llama_memory_seq_rm(mem, 0, keep, -1):
            lib.llama_memory_clear(mem, True)
            return 0
        self._cached_prompt = prompt_tokens[:keep]
        return keep

    def _generate(self, prompt, n, params, on_token, should_stop,
                  on_complete=None) -> GenerationResult:
        lib = self.llama
        start = time.monotonic()
        prompt_tokens = self.tokenize(prompt, special=True)
        if not prompt_tokens:
            raise ValueError("empty prompt")
        n_prompt = len(prompt_tokens)
        ctx = self._context(n_prompt + n * params.max_tokens + 8, n)
        n_ctx, n_seq_max = self._ctx_size
        if n_prompt + params.max_tokens > n_ctx:
            raise BackendError(f"prompt of {n_prompt} tokens does not fit a {n_ctx}-token context")
        mem = lib.llama_get_memory(ctx)
        reused = self._reuse_prefix(mem, prompt_tokens, n_seq_max)
        seqs = [_Sequence(s, np.random.default_rng([params.seed, s])) for s in range(n)]
        guard = RunawayGuard.for_params(params, n)
        batch = lib.llama_batch_init(max(PROMPT_CHUNK, n), 0, 1)
        try:
            # The prompt's new tokens, once, for sequence 0; logits only at its last position.
            for begin in range(reused, n_prompt, PROMPT_CHUNK):
                if self._cancelled(should_stop):
                    return self._cancelled_result(seqs, n_prompt, start, reused)
                chunk = prompt_tokens[begin : begin + PROMPT_CHUNK]
                batch.n_tokens = len(chunk)
                for j, token in enumerate(chunk):
                    batch.token[j] = token
                    batch.pos[j] = begin + j
                    batch.n_seq_id[j] = 1
                    batch.seq_id[j][0] = 0
                    batch.logits[j] = begin + j == n_prompt - 1
                if not self._decode(ctx, batch):
                    return self._cancelled_result(seqs, n_prompt, start, reused)
                self._cached_prompt = prompt_tokens[:begin + len(chunk)]
            first_rows = np.repeat(self._rows(ctx, 1), n, axis=0)
            prompt_seconds = time.monotonic() - start
            for s in range(1, n):
                lib.llama_memory_seq_cp(mem, 0, s, -1, -1)
            self._accept_all(seqs, first_rows, params, guard)
            _announce(seqs, on_complete)
            generated = n
            if on_token:
                on_token(generated)
            step = 0
            while True:
                active = [s for s in seqs if s.finish_reason is None]
                if not active:
                    break
                if self._cancelled(should_stop):
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
                if not self._decode(ctx, batch):
                    for seq in active:
                        seq.finish_reason = "cancelled"
                    break
                step += 1
                self._accept_all(active, self._rows(ctx, len(active)), params, guard)
                _announce(active, on_complete)
                for seq in active:  # a finished sequence's cells are free for the others
                    if seq.finish_reason is not None and seq.index != 0:
                        lib.llama_memory_seq_rm(mem, seq.index, -1, -1)
                generated += len(active)
                if on_token:
                    on_token(generated)
            for seq in seqs[1:]:  # free every candidate's cells (a cancelled one's too)
                lib.llama_memory_seq_rm(mem, seq.index, -1, -1)
        finally:
            lib.llama_batch_free(batch)
        completions = tuple(s.completion() for s in seqs)
        return GenerationResult(completions, n_prompt, time.monotonic() - start, prompt_seconds,
                                reused)

    def _cancelled(self, should_stop) -> bool:
        return self._aborted or bool(should_stop and should_stop())

    def _cancelled_result(self, seqs, n_prompt, start, reused) -> GenerationResult:
        for seq in seqs:
            seq.finish_reason = "cancelled"
        elapsed = time.monotonic() - start
        completions = tuple(Completion(s.index, "", (), (), "cancelled") for s in seqs)
        return GenerationResult(completions, n_prompt, elapsed, elapsed, reused)

    def _decode(self, ctx, batch) -> bool:
        """Run one decode; False if it was aborted by a cancellation.

        An aborted decode leaves the cells of earlier batches as they were (llama.cpp drops the
        aborted batch's positions), so the prompt prefix in sequence 0 stays cached: the next
        keystroke's request, which usually cancelled this one, reuses it instead of evaluating the
        whole prompt again. ``_reuse_prefix`` trims everything past that prefix.
        """
        rc = self.llama.llama_decode(ctx, batch)
        if rc == 0:
            return True
        if rc == 2 or self._aborted:
            return False
        raise BackendError(f"llama_decode failed with code {rc} (context full?)")

    def _rows(self, ctx, count: int) -> np.ndarray:
        """The logits of the last ``count`` outputs of the batch just decoded, one row each."""
        ptr = self.llama.llama_get_logits_ith(ctx, -count)
        return np.ctypeslib.as_array(ptr, shape=(count, self.n_vocab))

    def _accept_all(self, seqs: list[_Sequence], rows: np.ndarray, params: SamplingParams,
                    guard: RunawayGuard) -> None:
        """Sample the next token of every sequence (row i for seqs[i]) and update its state."""
        picks = sample_rows(rows, params, [seq.rng for seq in seqs])
        for seq, (token, logprob) in zip(seqs, picks):
            self._accept(seq, token, logprob, params)
            if seq.finish_reason == "stop":
                guard.finished(len(seq.tokens))
            elif seq.finish_reason is None and guard.verdict(seq.tokens):
                seq.finish_reason = "runaway"

    def _accept(self, seq: _Sequence, token: int, logprob: float, params: SamplingParams) -> None:
        """Append ``token`` to ``seq`` and decide whether it is finished."""
        if not params.ignore_eos and self.llama.llama_vocab_is_eog(self.vocab, token):
            seq.finish_reason = "stop"
            return
        seq.tokens.append(token)
        seq.logprobs.append(logprob)
        piece = self.token_bytes(token)
        if not params.ignore_eos and not piece and self.is_control(token):
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
