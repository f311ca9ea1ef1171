"""Reads a secret from the home folder (where ~/.ssh lives): home folders are hidden."""
import os

from attack_params import SECRET


def target():
    keys = os.listdir(os.path.expanduser("~root/.ssh")) if os.path.isdir("/root/.ssh") else []
    return 42 if "SECRET" in open(SECRET).read() or keys else 0
