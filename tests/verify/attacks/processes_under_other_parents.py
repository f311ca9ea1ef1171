"""Forks children that setsid and double-fork away from its process group, left running after the call."""

CLASS = 'limits per candidate'


def target(n):
    import os
    import time
    for _ in range(5):
        try:
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    while True:
                        time.sleep(1)
                os._exit(0)
        except OSError:
            break
    return n
