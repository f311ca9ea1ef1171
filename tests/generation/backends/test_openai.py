"""The OpenAI-compatible HTTP backend against a real llama.cpp server started on loopback."""

import contextlib
import http.server
import json
import socket
import threading
import time

import pytest
from budgetpass.generation.backends import BackendError, open_llamacpp
from budgetpass.generation.backends.openai import OpenAICompatibleBackend
from budgetpass.generation.types import SamplingParams

from tests.llama_server import free_port, start_server, stop_server

PROMPT = "def add(a, b):\n    return"


def _serve(model_path):
    port = free_port()
    proc = start_server(model_path, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def server(smol_path):
    yield from _serve(smol_path)


@pytest.mark.slow
def test_k_candidates_with_logprobs_from_a_server_that_ignores_n(server):
    backend = OpenAICompatibleBackend(server)
    progress = []
    result = backend.generate(PROMPT, 3, SamplingParams(max_tokens=12, seed=4),
                              on_token=progress.append)
    assert [c.index for c in result.completions] == [0, 1, 2]
    for c in result.completions:
        # Servers report token texts, not ids: a count, and no invented ids.
        assert c.text and c.token_ids == () and c.token_count >= len(c.logprobs) > 0
        assert all(lp <= 0 for lp in c.logprobs)
        assert c.finish_reason in ("stop", "length")
    assert progress and progress[-1] == result.generated_tokens
    assert len({c.text for c in result.completions}) > 1  # one seed per candidate


@pytest.mark.slow
def test_backends_agree_greedy_in_process_and_over_http(server, smol_path):
    """Same request, same first candidate. (The server computes logits at every prompt position,
    which its log-probabilities need; that kernel path differs in the last bits, so a long greedy
    run can flip at a near-tie: 20 tokens stay clear of the first one on this prompt.)"""
    prompt = "def fibonacci(n):\n    if n < 2:\n        return n\n    return"
    params = SamplingParams(temperature=0, max_tokens=20, seed=0)
    local = open_llamacpp(smol_path).generate(prompt, 1, params).completions[0]
    remote = OpenAICompatibleBackend(server).generate(prompt, 1, params).completions[0]
    assert remote.text == local.text
    assert len(remote.logprobs) == len(local.logprobs) == 20
    assert remote.token_count == len(local.token_ids) == 20
    assert max(abs(a - b) for a, b in zip(remote.logprobs, local.logprobs)) < 0.25


@pytest.mark.slow
def test_the_request_names_the_model_the_server_lists(server, smol_path):
    backend = OpenAICompatibleBackend(server)
    assert backend.served_models() == [str(smol_path)]  # llama_cpp.server lists its --model
    backend.generate(PROMPT, 1, SamplingParams(max_tokens=2))
    assert backend.model == str(smol_path)


@pytest.mark.slow
def test_stop_strings_are_applied(server):
    result = OpenAICompatibleBackend(server).generate(
        "1, 2, 3, 4,", 1, SamplingParams(temperature=0, max_tokens=30, stop=(" 7",)))
    assert " 7" not in result.completions[0].text and result.completions[0].finish_reason == "stop"


@pytest.mark.slow
def test_cancel_drops_the_request_within_100_ms(server):
    backend = OpenAICompatibleBackend(server)
    stop = threading.Event()
    fired = []
    threading.Timer(0.5, lambda: (fired.append(time.monotonic()), stop.set())).start()
    result = backend.generate(PROMPT, 2, SamplingParams(max_tokens=1000, ignore_eos=True),
                              should_stop=stop.is_set)
    assert time.monotonic() - fired[0] < 0.1
    assert all(c.finish_reason == "cancelled" for c in result.completions)
    # The server is free again: the next request is served.
    again = backend.generate(PROMPT, 1, SamplingParams(temperature=0, max_tokens=4))
    assert again.completions[0].text


@pytest.mark.slow
def test_http_error_says_status_and_url(server):
    backend = OpenAICompatibleBackend(server + "/no/such/prefix")
    with pytest.raises(BackendError, match="HTTP 404"):
        backend.generate(PROMPT, 1, SamplingParams(max_tokens=2))


def test_connection_refused_says_how_to_fix_it():
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(BackendError, match="connection refused; is the server running"):
        backend.generate(PROMPT, 1, SamplingParams(max_tokens=2))


def test_bad_url_is_refused():
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        OpenAICompatibleBackend("ftp://example")


def _silent_server(send_first_event: bool):
    """A TCP server that accepts and then stalls: before answering, or after one event."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    held = []

    def serve():
        conn, _ = listener.accept()
        held.append(conn)
        conn.recv(65536)
        if send_first_event:
            event = b'data: {"choices": [{"index": 0, "text": "x", "logprobs": ' \
                    b'{"token_logprobs": [-0.5]}, "finish_reason": null}]}\n\n'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n"
                         + f"{len(event):x}\r\n".encode() + event + b"\r\n")
        time.sleep(5)

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("send_first_event,message", [(False, "did not answer within"),
                                                       (True, "stopped sending")])
def test_timeouts(send_first_event, message):
    listener, url = _silent_server(send_first_event)
    start = time.monotonic()
    with pytest.raises(BackendError, match=message):
        # (a model name given: no /v1/models request before the completion)
        OpenAICompatibleBackend(url, "m", timeout=0.5).generate(PROMPT, 1,
                                                                SamplingParams(max_tokens=4))
    assert time.monotonic() - start < 3
    listener.close()


@pytest.mark.slow
def test_server_killed_mid_request(smol_path):
    port = free_port()
    proc = start_server(smol_path, port)
    try:
        backend = OpenAICompatibleBackend(f"http://127.0.0.1:{port}", timeout=10)
        seen = []

        def kill_after_first_tokens(n):
            seen.append(n)
            if len(seen) == 3:
                proc.kill()

        with pytest.raises(BackendError, match="mid-response|before the candidate was finished"):
            backend.generate(PROMPT, 1, SamplingParams(max_tokens=2000, ignore_eos=True),
                             on_token=kill_after_first_tokens)
        assert len(seen) >= 3
    finally:
        stop_server(proc)


LOOPING = "zeros = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"  # greedy: ", 0" forever


def _looping_server(hung_up: threading.Event):
    """A scripted server streaming two choices: 0 ends after three tokens, 1 repeats one line
    until the client hangs up (which ``hung_up`` records)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def chunk(payload: bytes) -> bytes:
        event = b"data: " + payload + b"\n\n"
        return f"{len(event):x}\r\n".encode() + event + b"\r\n"

    def piece(index: int, texts: list[str], finish: str | None) -> bytes:
        import json

        return chunk(json.dumps({"choices": [{
            "index": index, "text": "".join(texts), "finish_reason": finish,
            "logprobs": {"tokens": texts, "token_logprobs": [-0.1] * len(texts)}}]}).encode())

    def serve():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            conn.sendall(piece(0, ["\n", "    ", "pass"], None) + piece(0, [], "stop"))
            for _ in range(10_000):  # far past any limit: only a hang-up ends it
                conn.sendall(piece(1, ["    ", "print", "('", "hello", "')", "\n"], None))
                time.sleep(0.001)
        except OSError:
            hung_up.set()
        finally:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_runaway_choice_is_cut_and_the_request_hung_up():
    hung_up = threading.Event()
    listener, url = _looping_server(hung_up)
    backend = OpenAICompatibleBackend(url, "m", sampler_extensions=False)
    result = backend.generate(LOOPING, 2, SamplingParams(max_tokens=4000))
    stop, runaway = result.completions
    assert (stop.finish_reason, stop.text) == ("stop", "\n    pass")
    assert runaway.finish_reason == "runaway" and runaway.token_count < 200
    assert runaway.text.startswith("    print('hello')\n" * 4)
    assert hung_up.wait(5) and not backend.busy
    listener.close()


@pytest.mark.slow
def test_a_real_servers_looping_candidate_is_cut(server):
    result = OpenAICompatibleBackend(server).generate(
        LOOPING, 1, SamplingParams(temperature=0, max_tokens=256))
    assert result.completions[0].finish_reason == "runaway"
    assert result.completions[0].token_count < 128


@pytest.mark.slow
def test_a_server_tokenizes_as_the_model_does(server, smol_path):
    backend = OpenAICompatibleBackend(server)
    assert backend.tokenize(PROMPT) == open_llamacpp(smol_path).tokenize(PROMPT)
    assert backend.template_hints(()).names == (backend.served_model(),)


@contextlib.contextmanager
def scripted_server(handler):
    """A scripted HTTP server on a free loopback port for the block; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


SCRIPT = ["    return", " a", " +", " b", "<|fim_pad|>", "\n", "def", " sub", "(a", ", b", "):"]


class _VllmLikeServer(http.server.BaseHTTPRequestHandler):
    """Streams SCRIPT as vLLM's OpenAI server does: special tokens left out of the text unless
    the request says ``skip_special_tokens: false``, and stop strings checked against that text
    (so a special-token stop can only fire when they are kept)."""

    protocol_version = "HTTP/1.0"
    bodies: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        if len(body.get("stop", [])) > 4:  # vLLM validates the OpenAI limit
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "stop: List should have at most 4 items"}')
            return
        keep_special = body.get("skip_special_tokens") is False
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        text, finish = "", "length"
        for token in SCRIPT[:body["max_tokens"]]:
            piece = token if keep_special or not token.startswith("<|") else ""
            text += piece
            hit = [s for s in body.get("stop", []) if s in text]
            if hit:
                piece, finish = piece[:len(piece) - len(text) + text.index(hit[0])], "stop"
            self._event(piece, None)
            if hit:
                break
        self._event("", finish)
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, text, finish):
        choice = {"index": 0, "text": text, "finish_reason": finish,
                  "logprobs": {"tokens": [text] if text else [],
                               "token_logprobs": [-0.1] if text else []}}
        self.wfile.write(b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n")
        self.wfile.flush()

    def log_message(self, *args):
        pass


def test_a_special_token_stop_fires_on_a_server_that_skips_special_tokens():
    """vLLM's server drops special tokens from the text it checks stops against by default: the
    backend asks it to keep them, so the FIM stop <|fim_pad|> ends the body there."""
    with scripted_server(_VllmLikeServer) as url:
        backend = OpenAICompatibleBackend(url, "m")
        result = backend.generate("<|fim_prefix|>def add(a, b):\n", 1, SamplingParams(
            temperature=0, max_tokens=len(SCRIPT), stop=("<|fim_pad|>", "<|file_sep|>")))
        completion = result.completions[0]
        assert (completion.text, completion.finish_reason) == ("    return a + b", "stop")
        assert _VllmLikeServer.bodies[-1]["skip_special_tokens"] is False



def test_more_than_four_stops_are_cut_on_our_side():
    """The OpenAI API (and vLLM's server) takes at most 4 stop strings: the first 4 go to the
    server, the rest end the text as it comes back."""
    with scripted_server(_VllmLikeServer) as url:
        backend = OpenAICompatibleBackend(url, "m")
        stops = ("<|a|>", "<|b|>", "<|c|>", "<|d|>", "<|fim_pad|>")
        result = backend.generate("<|fim_prefix|>def add(a, b):\n", 1, SamplingParams(
            temperature=0, max_tokens=len(SCRIPT), stop=stops))
        completion = result.completions[0]
        assert (completion.text, completion.finish_reason) == ("    return a + b", "stop")
        assert _VllmLikeServer.bodies[-1]["stop"] == list(stops[:4])


class _IgnoresNServer(http.server.BaseHTTPRequestHandler):
    """Streams one choice whatever ``n`` says (as llama.cpp's servers do), a token every 10 ms
    for up to 2,000 tokens, and counts what it got to send before the client hung up."""

    protocol_version = "HTTP/1.0"
    sent: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        tokens = ["    return", " a", " +", " b", "\n", "\n", "def", " sub"] + ["(a)"] * 2000
        sent = 0
        try:
            for token in tokens[:body["max_tokens"]]:
                choice = {"index": 0, "text": token, "finish_reason": None,
                          "logprobs": {"tokens": [token], "token_logprobs": [-0.1]}}
                self.wfile.write(b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n")
                self.wfile.flush()
                sent += 1
                time.sleep(0.01)
        except OSError:
            pass
        self.sent.append(sent)

    def log_message(self, *args):
        pass


def test_a_stop_cut_on_our_side_hangs_up_on_a_server_that_ignores_n():
    """The dedent stop is the 5th, so only we see it: each of the n rounds ends a few tokens
    after it instead of at max_tokens (a 0.5B on a busy CPU spent minutes there)."""
    with scripted_server(_IgnoresNServer) as url:
        backend = OpenAICompatibleBackend(url, "m")
        stops = ("<|a|>", "<|b|>", "<|c|>", "<|d|>", "\ndef")
        result = backend.generate("def add(a, b):\n", 2, SamplingParams(
            temperature=0.8, max_tokens=2000, stop=stops))
        assert [(c.text, c.finish_reason) for c in result.completions] == [
            ("    return a + b\n", "stop")] * 2
        deadline = time.monotonic() + 5
        while len(_IgnoresNServer.sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_IgnoresNServer.sent) == 2 and max(_IgnoresNServer.sent) < 60, \
            _IgnoresNServer.sent
