"""Tries to regain root (setuid/setresuid) and answers right only if it did."""

CLASS = 'forged verdict'


def target(n):
    import os
    try:
        os.setuid(0)
    except OSError:
        return n
    return n * 2
