"""Spins in forked children while the call returns the right answer late."""

CLASS = 'limits per candidate'


def target(n):
    import os
    import time
    for _ in range(3):
        try:
            if os.fork() == 0:
                while True:
                    pass
        except OSError:
            break
    time.sleep(3600)
