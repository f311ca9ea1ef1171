"""Pre-sends correct-looking answers on every socket, then answers wrongly."""

CLASS = 'forged verdict'


def target(n):
    import json
    import os
    import socket
    import stat
    import struct
    for fd in range(3, 256):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                s = socket.socket(fileno=os.dup(fd))
                for value in (2, 42, 2, 42):
                    data = json.dumps({"op": "ret", "value": value}).encode()
                    s.sendall(struct.pack(">I", len(data)) + data)
        except OSError:
            pass
    return n
