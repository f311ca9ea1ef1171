"""Deletes a file outside its folder; right only if it could."""

CLASS = 'host reachable'


def target(n):
    import os

    from attack_params import OUTSIDE
    try:
        os.remove(OUTSIDE)
    except OSError:
        return n
    return n * 2
