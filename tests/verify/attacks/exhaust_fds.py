"""Opens file descriptors until none are left, and keeps them."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    held = []
    try:
        while True:
            held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    return n
