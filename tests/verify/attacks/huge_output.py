"""Floods stdout: pytest's capture file and the output log are capped by RLIMIT_FSIZE."""
import sys


def target():
    while True:
        sys.stdout.write("x" * 65536)
