"""Forks a grandchild that outlives the call and writes forged results to every fd after the run's 'done'."""

CLASS = 'forged verdict'


def target(n):
    import json
    import os
    import time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(1.0)
            line = json.dumps({"op": "test", "node": "test_mod.py::test_double", "outcome": "passed", "message": ""}) + "\n"
            for _ in range(20):
                for fd in range(3, 256):
                    try:
                        os.write(fd, line.encode())
                    except OSError:
                        pass
                time.sleep(0.1)
        os._exit(0)
    return n
