"""One streamed ``/v1/completions`` response, piece by piece: the choices it fills, the stop strings
cut on our side (servers cap or ignore the ``stop`` list), and the connection that can be hung up
at once (closing it also tells a streaming server to stop generating)."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass, field

from ..runaway import RunawayGuard


@dataclass
class Choice:
    text: str = ""
    logprobs: list[float] = field(default_factory=list)
    tokens: int = 0  # generated tokens, as the server reports them (stop tokens included)
    finish_reason: str | None = None
    pieces: list = field(default_factory=list)  # the token texts, for runaway control


def take_piece(choice: Choice, item: dict, guard: RunawayGuard, stops: tuple[str, ...]) -> int:
    """Add one streamed piece to its choice; returns its token count. A stop string the server
    was not sent (MAX_SERVER_STOPS) ends the choice here: ``client-stop``, cut at the end."""
    piece = item.get("text") or ""
    checked_from = max(0, len(choice.text) - max((len(s) for s in stops), default=0))
    choice.text += piece
    reported = item.get("logprobs") or {}
    logprobs = reported.get("token_logprobs") or []
    choice.logprobs.extend(float(x) for x in logprobs if x is not None)
    texts = reported.get("tokens") or [object() for _ in logprobs]  # no texts: no loop check
    choice.tokens += len(texts)
    choice.pieces.extend(texts)
    if item.get("finish_reason"):
        choice.finish_reason = item["finish_reason"]
        if choice.finish_reason == "stop":
            guard.finished(choice.tokens)
    elif piece and any(stop in choice.text[checked_from:] for stop in stops):
        choice.finish_reason = "client-stop"
        guard.finished(choice.tokens)
    elif guard.verdict(choice.pieces):
        choice.finish_reason = "runaway"
    return len(texts)


# Finish reasons decided on our side: the server may still be generating that choice.
CUT_HERE = ("runaway", "client-stop")
# Stream events, all for choices already cut on our side, after which a server is taken to
# ignore ``n`` (a server that honours it starts every choice in its first few events).
EVENTS_BEFORE_HANG_UP = 8


class KeptSocketHTTPConnection(http.client.HTTPConnection):
    """Keeps its socket: http.client hands it to a response that will close the connection
    (HTTP/1.0, ``Connection: close``) and forgets it, and a hang-up needs it."""

    opened = None

    def connect(self):
        super().connect()
        self.opened = self.sock


class KeptSocketHTTPSConnection(http.client.HTTPSConnection):
    opened = None

    def connect(self):
        super().connect()
        self.opened = self.sock


def hang_up(conn: http.client.HTTPConnection) -> None:
    """Close at once; a streaming server sees the disconnect and stops generating."""
    sock = conn.opened or conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    conn.close()


def error_message(detail: str) -> str:
    try:
        data = json.loads(detail)
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("detail") or err)[:500]
        return str(err)[:500]
    except ValueError:
        return detail[:500] or "(empty body)"


MAX_SERVER_STOPS = 4


def apply_stops(text: str, stops: tuple[str, ...], reason: str | None) -> tuple[str, str]:
    """Cut at the first stop string, for servers that cap or ignore the ``stop`` list."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut], "stop"
    return text, reason or "stop"
