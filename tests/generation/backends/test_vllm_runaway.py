"""The vLLM backend's runaway handling, on a scripted engine (vLLM itself runs only in its own
venv: tests/generation/backends/test_vllm.py). Only the loop's bookkeeping is under test here."""

import threading
from types import SimpleNamespace

from budgetpass.generation.backends.vllm import VLLMBackend
from budgetpass.generation.types import SamplingParams


class ScriptedEngine:
    """Candidate 0 ends after 5 tokens; candidate 1 repeats a 3-token cycle until aborted."""

    def __init__(self):
        self.steps, self.aborted, self.request = 0, [], None

    def add_request(self, request_id, prompt, params):
        self.request = request_id

    def has_unfinished_requests(self):
        return self.request is not None and self.steps < 10_000

    def abort_request(self, ids):
        self.aborted += ids
        self.request = None

    def step(self):
        self.steps += 1
        n = self.steps
        outputs = [SimpleNamespace(index=1, text="ab " * n, token_ids=[1, 2, 3] * n,
                                   logprobs=None, finish_reason=None)]
        if n <= 5:
            outputs.append(SimpleNamespace(index=0, text="x" * n, token_ids=[9] * n,
                                           logprobs=None, finish_reason="stop" if n == 5 else None))
        return [SimpleNamespace(request_id=self.request, outputs=outputs, prompt_token_ids=[0],
                                num_cached_tokens=0)]


def test_a_runaway_candidate_is_cut_and_the_request_aborted():
    backend = object.__new__(VLLMBackend)
    backend.engine, backend._special_ids, backend.special_token_ids = ScriptedEngine(), set(), {}
    backend._lock = threading.Lock()
    backend.sampling_params = lambda n, params: None
    result = backend.generate("p", 2, SamplingParams(max_tokens=4000))
    done, cut = result.completions
    assert done.finish_reason == "stop" and cut.finish_reason == "runaway"
    assert len(backend.engine.aborted) == 1  # dropped once only the runaway was left
    assert 48 <= len(cut.token_ids) < 100 and backend.engine.steps < 40
    off = object.__new__(VLLMBackend)
    off.__dict__.update(backend.__dict__, engine=ScriptedEngine(), _lock=threading.Lock())
    off.generate("p", 2, SamplingParams(max_tokens=4000, runaway=None))
    assert off.engine.steps == 10_000  # without control the batch waits on the loop
