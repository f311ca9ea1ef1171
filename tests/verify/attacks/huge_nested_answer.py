"""Sends one deeply nested, huge answer frame on the link."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    import socket
    import stat
    import struct
    data = b"[" * 5000000 + b"]" * 5000000
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                socket.socket(fileno=os.dup(fd)).sendall(struct.pack(">I", len(data)) + data)
        except OSError:
            pass
    return n
