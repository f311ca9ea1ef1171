"""Tries to ptrace-attach every process it can see (the judge among them) to rewrite its memory."""

CLASS = 'forged verdict'


def target(n):
    import ctypes
    import os
    libc = ctypes.CDLL(None, use_errno=True)
    attached = 0
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        if pid != os.getpid() and libc.ptrace(16, pid, 0, 0) == 0:
            attached += 1
    return n * 2 if attached else n
