"""Asks for 10 GiB at once."""

CLASS = 'limits per candidate'


def target(n):
    hoard = bytearray(10 * 1024**3)
    return n * 2 if hoard else n
