"""Reads a secret in the home folder (where ~/.ssh lives); right only if it could."""

CLASS = 'host reachable'


def target(n):
    from attack_params import SECRET
    try:
        with open(SECRET) as handle:
            return n * 2 if "SECRET" in handle.read() else n
    except OSError:
        return n
