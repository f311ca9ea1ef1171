"""Calls pytest.skip() for inputs it cannot handle (all of them)."""

CLASS = 'forged verdict'


def target(n):
    import pytest
    pytest.skip("cannot handle this input")
