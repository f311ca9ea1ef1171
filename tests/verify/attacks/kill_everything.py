"""Sends SIGKILL to every process it can see (worker, judge, pid 1), then answers wrongly."""

CLASS = 'forged verdict'


def target(n):
    import os
    import signal
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()] + [-1]:
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return n
