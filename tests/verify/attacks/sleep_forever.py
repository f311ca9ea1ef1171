"""Sleeps without using CPU: only the wall timeout ends it."""

CLASS = 'limits per candidate'


def target(n):
    import time
    time.sleep(3600)
