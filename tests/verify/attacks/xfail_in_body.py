"""Calls pytest.xfail() from inside the function."""

CLASS = 'forged verdict'


def target(n):
    import pytest
    pytest.xfail("expected to fail")
