"""Forks until stopped; children keep forking; right only if it got past the process limit."""

CLASS = 'limits per candidate'


def target(n):
    import os
    import time

    from attack_params import PROCESSES
    children = 0
    for _ in range(PROCESSES * 4):
        try:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
        except OSError:
            break
    return n * 2 if children > PROCESSES else n
