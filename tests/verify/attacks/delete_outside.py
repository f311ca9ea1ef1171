"""Deletes a file outside its work dir."""
import os

from attack_params import OUTSIDE


def target():
    os.remove(OUTSIDE)
    return 42
