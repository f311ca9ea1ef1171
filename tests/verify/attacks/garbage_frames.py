"""Sends frames of random bytes, invalid JSON and wrong types on the link."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    import socket
    import stat
    import struct
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                s = socket.socket(fileno=os.dup(fd))
                for payload in (os.urandom(100), b"[1, 2", b"\"str\"", b'{"op": "ret", "value": {"$o": ["subprocess", "Popen", {"$d": []}]}}'):
                    s.sendall(struct.pack(">I", len(payload)) + payload)
        except OSError:
            pass
    return n * 2
