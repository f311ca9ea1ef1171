"""Sleeps without using CPU: only the wall timeout stops it."""
import time


def target():
    time.sleep(3600)
