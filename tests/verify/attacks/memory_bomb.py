"""Asks for 10 GiB at once: RLIMIT_AS refuses it."""


def target():
    hoard = bytearray(10 * 1024**3)
    return 42 if hoard else 0
