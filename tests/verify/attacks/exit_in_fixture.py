"""Ends the test process with exit code 0 from inside a fixture, before any test could fail."""
import os

WHERE = "fixture"


def target():
    os._exit(0)
