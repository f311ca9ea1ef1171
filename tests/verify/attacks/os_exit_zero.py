"""Ends its process with exit code 0 during the call."""

CLASS = 'forged verdict'


def target(n):
    import os
    os._exit(0)
