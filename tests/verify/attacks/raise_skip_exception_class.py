"""Raises a hand-made exception whose class is named Skipped in module builtins."""

CLASS = 'forged verdict'


def target(n):
    class Skipped(Exception):
        pass
    Skipped.__module__ = "builtins"
    raise Skipped("looks like pytest's")
