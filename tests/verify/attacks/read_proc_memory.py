"""Opens /proc/PID/mem of every process to find and patch the reporter."""

CLASS = 'forged verdict'


def target(n):
    import os
    opened = 0
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/mem", "r+b"):
                opened += 1
        except OSError:
            pass
    return n * 2 if opened else n
