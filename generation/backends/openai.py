"""A model behind an OpenAI-compatible ``/v1/completions`` endpoint (vllm serve, llama.cpp's server,
Ollama, a multi-GPU vLLM deployment).

Requests stream (server-sent events) so that a cancelled request is dropped at once (closing the
connection also tells the server to stop) and progress can be reported. Some servers ignore ``n``
(llama-cpp-python's server returns one choice); the missing candidates are requested again, one
seed each, so the caller always gets ``n``.

Servers report each generated token's text and log-probability, not its id: completions carry the
count (``Completion.token_count``, from ``logprobs.tokens``) and no ids.

Runaway control (``runaway.py``) sees the streamed token texts: a candidate it cuts is no longer
read (the server cannot stop one choice of a request), and once every candidate is finished or
cut the connection is closed, which stops the server generating the runaway.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable

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
from .openai_stream import (
    CUT_HERE,
    EVENTS_BEFORE_HANG_UP,
    MAX_SERVER_STOPS,
    Choice,
    KeptSocketHTTPConnection,
    KeptSocketHTTPSConnection,
    apply_stops,
    error_message,
    hang_up,
    take_piece,
)
from .sampler import CANDIDATE_POOL

_POLL_SECONDS = 0.02


class OpenAICompatibleBackend:
    """``base_url`` like http://127.0.0.1:8000 (with or without /v1).

    ``timeout``: seconds to wait for the server to answer or to send the next streamed piece;
    ``request_timeout``: the most one request may take in all.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, request_timeout: float = 600.0,
                 sampler_extensions: bool = True):
        parsed = urllib.parse.urlsplit(base_url if "://" in base_url else f"http://{base_url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"server URL must look like http://HOST:PORT, not {base_url!r}")
        self.base_url = base_url
        self._scheme, self._host = parsed.scheme, parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        path = parsed.path.rstrip("/")
        self._v1 = path if path.endswith("/v1") else path + "/v1"
        self._path = self._v1 + "/completions"
        # The name requests carry (vLLM refuses one it does not serve); None: asked of the server
        # (``served_model``) at the first request.
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.request_timeout = request_timeout
        # top_k / min_p / repeat_penalty are not OpenAI fields, but vLLM and llama.cpp take them:
        # without them llama.cpp's servers apply their own defaults (top_k 40, min_p 0.05, and a
        # repeat penalty of 1.1 in llama-cpp-python's), so candidates would not match the
        # in-process sampler.
        self.sampler_extensions = sampler_extensions
        self._running = 0
        self._running_lock = threading.Lock()

    def close(self) -> None:
        return None

    @property
    def busy(self) -> bool:
        """Whether a ``generate`` runs now (the server may serve others too: this says ours)."""
        return self._running > 0

    def template_hints(self, markers) -> TemplateHints:
        """A server tells its model's name, not its vocabulary."""
        return TemplateHints(names=(self.served_model(),), source="the server")

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """Token ids from the server's tokenize endpoint (vLLM and llama.cpp's server have
        ``/tokenize``, llama-cpp-python's ``/extras/tokenize``); BackendError if it has none. The
        server decides how marker texts tokenize (``special`` cannot be asked: counts may differ
        by a token where code spells a marker)."""
        root = self._v1[: -len("/v1")]
        body = json.dumps({"model": self.served_model(), "prompt": text, "content": text,
                           "input": text, "add_special": False,
                           "add_special_tokens": False}).encode()
        headers = self._headers(**{"Content-Type": "application/json"})
        tried = []
        for path in (root + "/tokenize", root + "/extras/tokenize"):
            conn = self._connect()
            try:
                answer = self._send(conn, "POST", path, body, headers).read(1 << 24)
                return [int(t) for t in json.loads(answer)["tokens"]]
            except BackendError as exc:
                tried.append(str(exc))
            except (ValueError, KeyError, TypeError):
                tried.append(f"{self.url}{path} answered without a token list")
            except (OSError, http.client.HTTPException) as exc:
                raise BackendError(f"cannot reach {self.url}: {exc}") from None
            finally:
                conn.close()
        raise BackendError(f"{self.url} offers no tokenize endpoint ({'; '.join(tried)})")

    @property
    def url(self) -> str:
        return f"{self._scheme}://{self._host}:{self._port}"

    def served_models(self) -> list[str]:
        """The model ids ``GET /v1/models`` lists; BackendError naming the URL if unreachable."""
        conn = self._connect()
        where = f"{self.url}{self._v1}/models"
        try:
            detail = self._send(conn, "GET", self._v1 + "/models", None, self._headers()).read(
                1 << 20).decode("utf-8", "replace")
        except TimeoutError:
            raise BackendError(f"{where} stopped sending for {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise BackendError(f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}; is the "
                               "endpoint URL right?") from None
        finally:
            conn.close()
        try:
            data = json.loads(detail)
            return [str(m["id"]) for m in data.get("data", []) if isinstance(m, dict) and "id" in m]
        except (ValueError, AttributeError, TypeError):
            raise BackendError(f"{where} did not answer with a model list: "
                               f"{detail[:200]!r}") from None

    def served_model(self, wanted: str | None = None) -> str:
        """The id to request: ``wanted`` if the server lists it, else the only model it serves."""
        if self.model is not None:
            return self.model
        ids = self.served_models()
        if wanted in ids or len(ids) == 1:
            self.model = wanted if wanted in ids else ids[0]
            return self.model
        if not ids:
            raise BackendError(f"{self.url} lists no models at {self._v1}/models")
        raise BackendError(f"{self.url} serves several models ({', '.join(ids)}); set model to "
                           "the one to use")

    def prompt_tokens(self, prompt: str) -> int:
        """Tokens the served model makes of ``prompt`` (``usage.prompt_tokens`` of a one-token
        completion, which OpenAI-compatible servers report): remote calibration needs it."""
        body = json.dumps({"model": self.served_model(), "prompt": prompt, "max_tokens": 1,
                           "temperature": 0}).encode()
        conn = self._connect()
        try:
            response = self._send(conn, "POST", self._path, body,
                                  self._headers(**{"Content-Type": "application/json"}))
            detail = response.read(1 << 20).decode("utf-8", "replace")
        except TimeoutError:
            raise BackendError(f"{self.url} did not answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise BackendError(f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}") from None
        finally:
            conn.close()
        try:
            return int(json.loads(detail)["usage"]["prompt_tokens"])
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"{self.url} reported no usage.prompt_tokens: "
                               f"{detail[:200]!r}") from None

    def generate(self, prompt: str, n: int, params: SamplingParams,
                 on_token: Callable[[int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_complete: CompletionCallback | None = None) -> GenerationResult:
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._running_lock:
            self._running += 1
        try:
            return self._generate(prompt, n, params, on_token, should_stop, on_complete)
        finally:
            with self._running_lock:
                self._running -= 1

    def _generate(self, prompt, n, params, on_token, should_stop, on_complete):
        start = time.monotonic()
        choices: list[Choice] = []
        first_piece: float | None = None
        guard = RunawayGuard.for_params(params, n)
        while len(choices) < n:
            # A server that honours n answers in one round; one that ignores it, in n rounds.
            missing = n - len(choices)
            seed = params.seed + len(choices)
            earlier = sum(len(c.logprobs) for c in choices)
            progress = (lambda done, base=earlier: on_token(base + done)) if on_token else None
            got, first = self._request(prompt, missing, params, seed, should_stop, progress,
                                       guard)
            first_piece = first_piece if first_piece is not None else first
            if any(c.finish_reason == "cancelled" for c in got):
                choices.extend(got)
                break
            choices.extend(got[:missing])
        while len(choices) < n:
            choices.append(Choice(finish_reason="cancelled"))
        completions = []
        for index, choice in enumerate(choices):
            text, reason = apply_stops(choice.text, params.stop, choice.finish_reason)
            completions.append(Completion(index, text, (), tuple(choice.logprobs), reason,
                                          token_count=choice.tokens))
        elapsed = time.monotonic() - start
        return deliver_completions(GenerationResult(
            tuple(completions), 0, elapsed, (first_piece - start) if first_piece else elapsed),
            on_complete)

    # --- one streamed request -----------------------------------------------------------------

    def _body(self, prompt: str, n: int, params: SamplingParams, seed: int) -> dict:
        body = {
            "model": self.served_model(),
            "prompt": prompt,
            "n": n,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "logprobs": 1,
            "echo": False,
            "stream": True,
            "seed": seed,
        }
        if params.stop:
            # The OpenAI API allows at most 4 stop strings and vLLM's server refuses more (HTTP
            # 400); the rest are applied to the text as it arrives (apply_stops).
            body["stop"] = list(params.stop)[:MAX_SERVER_STOPS]
        if self.sampler_extensions:
            body["top_k"] = params.top_k or CANDIDATE_POOL
            body["min_p"] = 0.0
            body["repeat_penalty"] = 1.0  # llama-cpp-python's server defaults to 1.1
            # vLLM checks stop strings against the text it returns, special tokens removed by
            # default: a special-token stop (<|fim_pad|>, <|file_sep|>) would never fire.
            # llama.cpp's servers ignore the field (they stop on such end-of-generation tokens).
            body["skip_special_tokens"] = False
            if params.ignore_eos:
                body["ignore_eos"] = True
        return body

    def _headers(self, **extra: str) -> dict[str, str]:
        return {**extra, **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})}

    def _send(self, conn, method: str, path: str, body: bytes | None, headers: dict):
        """Send one request and return the response; BackendError naming the server when it
        refuses the connection, does not answer, or answers with an HTTP error."""
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except ConnectionRefusedError:
            raise BackendError(f"cannot connect to {self.url}: connection refused; is the server "
                               "running and is the endpoint URL right?") from None
        except TimeoutError:
            raise BackendError(f"{self.url} did not answer within {self.timeout:g} s "
                               "(server overloaded or hung?)") from None
        if response.status >= 400:
            detail = response.read(2000).decode("utf-8", "replace").strip()
            raise BackendError(f"{self.url}{path} answered HTTP {response.status} "
                               f"{response.reason}: {error_message(detail)}")
        return response

    def _connect(self) -> http.client.HTTPConnection:
        cls = KeptSocketHTTPSConnection if self._scheme == "https" else KeptSocketHTTPConnection
        return cls(self._host, self._port, timeout=self.timeout)

    def _request(self, prompt, n, params, seed, should_stop, progress, guard: RunawayGuard):
        """Stream one request; returns (choices by index, monotonic time of the first piece)."""
        body = json.dumps(self._body(prompt, n, params, seed)).encode()
        headers = self._headers(**{"Content-Type": "application/json",
                                   "Accept": "text/event-stream"})
        conn = self._connect()
        events: queue.Queue = queue.Queue()
        reader = threading.Thread(target=self._read, args=(conn, body, headers, events),
                                  daemon=True, name="budgetpass-http")
        reader.start()
        deadline = time.monotonic() + self.request_timeout
        choices: dict[int, Choice] = {}
        first_piece = None
        generated = 0
        settled = 0  # events since every choice seen so far finished, bringing no new choice
        try:
            while True:
                if should_stop and should_stop():
                    for i in range(n):
                        choices.setdefault(i, Choice()).finish_reason = "cancelled"
                    break
                if time.monotonic() > deadline:
                    raise BackendError(f"{self.base_url}: the request took longer than "
                                       f"{self.request_timeout:g} s; raise the request timeout "
                                       "or lower max_tokens")
                try:
                    kind, payload = events.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                if kind == "error":
                    raise payload
                if kind == "done":
                    break
                first_piece = first_piece or time.monotonic()
                new_index = False
                for item in payload.get("choices", []):
                    index = int(item.get("index", 0))
                    new_index = new_index or index not in choices
                    choice = choices.setdefault(index, Choice())
                    if choice.finish_reason in CUT_HERE:
                        continue  # cut on our side: the rest of it is not read
                    generated += take_piece(choice, item, guard, params.stop)
                if progress:
                    progress(generated)
                finished = all(c.finish_reason for c in choices.values())
                if finished and len(choices) >= n:
                    break  # hanging up stops what the server is still generating
                # A server that ignores n (llama.cpp's) streams one choice: once ours is cut and
                # the server keeps sending only that one, stop it rather than wait for max_tokens.
                settled = settled + 1 if finished and not new_index else 0
                if settled >= EVENTS_BEFORE_HANG_UP and all(
                        c.finish_reason in CUT_HERE for c in choices.values()):
                    break
        finally:
            hang_up(conn)
        ordered = [choices[i] for i in sorted(choices)]
        for choice in ordered:
            if choice.finish_reason is None:
                raise BackendError(f"{self.base_url}: the server ended the response before the "
                                   "candidate was finished (did it crash or restart?)")
        if not ordered:
            raise BackendError(f"{self.base_url}: the server answered with no completion")
        return ordered, first_piece

    def _read(self, conn, body, headers, events: queue.Queue) -> None:
        """Runs in a thread: posts the request and queues ('event', dict) / ('done'|'error', x)."""
        url = self.url
        try:
            response = self._send(conn, "POST", self._path, body, headers)
            while True:
                line = response.readline()
                if not line:
                    events.put(("done", None))  # the stream ended (normally or not: checked later)
                    return
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    events.put(("done", None))
                    return
                try:
                    payload = json.loads(data)
                except ValueError:
                    raise BackendError(f"{url} sent a stream line that is not JSON: "
                                       f"{data[:200]!r}") from None
                if "error" in payload:
                    raise BackendError(f"{url} reported an error: "
                                       f"{error_message(json.dumps(payload))}")
                events.put(("event", payload))
        except BackendError as exc:
            events.put(("error", exc))
        except TimeoutError:
            events.put(("error", BackendError(
                f"{url} stopped sending for {self.timeout:g} s in the middle of a response")))
        except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            # (http.client raises ValueError/AttributeError when the socket is closed under it,
            # which is also how a cancelled request is hung up: then nobody reads this any more.)
            events.put(("error", BackendError(
                f"{url}: the connection failed mid-response ({exc.__class__.__name__}: {exc}); "
                "did the server crash or restart?")))
