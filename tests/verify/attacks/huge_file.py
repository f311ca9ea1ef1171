"""Fills the disk in its own work dir: RLIMIT_FSIZE stops the file."""


def target():
    with open("big", "wb") as handle:
        while True:
            handle.write(b"x" * 1048576)
