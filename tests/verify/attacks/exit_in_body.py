"""Calls pytest.exit(returncode=0) from inside the function."""

CLASS = 'forged verdict'


def target(n):
    import pytest
    pytest.exit("done", returncode=0)
