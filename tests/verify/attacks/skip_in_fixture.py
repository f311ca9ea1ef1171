"""Skips from inside the function while a fixture calls it."""

CLASS = 'forged verdict'


def target(n):
    import pytest
    if n == 21:
        pytest.skip("fixture input")
    return n
