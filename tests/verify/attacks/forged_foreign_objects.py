"""Answers with tagged values naming classes outside the project (subprocess.Popen, os.system)."""

CLASS = 'worker acting for the candidate'


def target(n):
    import json
    import os
    import socket
    import stat
    import struct
    frames = [{"op": "ret", "value": {"$cls": ["os", "system"]}},
              {"op": "ret", "value": {"$o": ["subprocess", "Popen", {"$d": [["args", "id"]]}]}},
              {"op": "raise", "exc": ["_pytest.outcomes", "Skipped", {"$t": ["x"]}, "Skipped: x"]}]
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                s = socket.socket(fileno=os.dup(fd))
                for frame in frames:
                    data = json.dumps(frame).encode()
                    s.sendall(struct.pack(">I", len(data)) + data)
                os._exit(0)
        except OSError:
            pass
    return n
