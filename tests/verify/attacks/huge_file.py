"""Writes one file past the file-size limit."""

CLASS = 'limits per candidate'


def target(n):
    written = 0
    try:
        with open("big", "wb") as handle:
            while True:
                handle.write(b"x" * 1048576)
                written += 1048576
                if written > 1 << 30:
                    break
    except OSError:
        pass
    return n * 2 if written > 1 << 30 else n
