"""Raises SystemExit(0) in the call."""

CLASS = 'forged verdict'


def target(n):
    raise SystemExit(0)
