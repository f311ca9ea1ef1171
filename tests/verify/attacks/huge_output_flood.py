"""Floods stdout/stderr (fd 1 and 2) without end."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    chunk = b"x" * 65536
    while True:
        os.write(1, chunk)
        os.write(2, chunk)
