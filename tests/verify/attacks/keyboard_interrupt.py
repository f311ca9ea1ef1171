"""Raises KeyboardInterrupt, which stops a pytest session."""

CLASS = 'forged verdict'


def target(n):
    raise KeyboardInterrupt
