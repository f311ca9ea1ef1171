"""Ends its process with exit code 0 while a fixture calls it, before any assertion ran."""

CLASS = 'forged verdict'


def target(n):
    import os
    if n == 21:
        os._exit(0)
    return n
