"""Reads a world-readable file on the host outside the project; right only if it could."""

CLASS = 'host reachable'


def target(n):
    from attack_params import WORLD_READABLE
    try:
        with open(WORLD_READABLE) as handle:
            return n * 2 if "CANARY" in handle.read() else n
    except OSError:
        return n
