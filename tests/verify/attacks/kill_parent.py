"""Kills its parent (the worker or pytest's launcher) and pid 1 of its namespace, then passes.

No error is swallowed: a refused kill fails the test, a successful one must not pass either.
"""
import os
import signal


def target():
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill(1, signal.SIGKILL)
    return 42
