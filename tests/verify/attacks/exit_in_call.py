"""Ends the test process with exit code 0 during the test call."""
import os


def target():
    os._exit(0)
