"""Length-prefixed frames on the judge-executor socket pair, read with a byte cap; and the
iterator that stands for one held on the other side."""

from __future__ import annotations

import socket
import struct


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the link")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket, cap: int) -> bytes:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    if size > cap:
        raise ValueError(f"a {size}-byte answer is over the {cap}-byte limit")
    return _recv_exact(sock, size)


class Proxy:
    """An iterator on the other side of the link."""

    def __init__(self, step):
        self.step = step

    def __iter__(self):
        return self

    def __next__(self):
        return self.step()
