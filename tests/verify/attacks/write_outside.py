"""Overwrites a file outside its folder, the real project and /; right only if one write landed."""

CLASS = 'host reachable'


def target(n):
    from attack_params import OUTSIDE, PROJECT
    landed = 0
    for path in (f"{PROJECT}/mod.py", OUTSIDE, "/budgetpass-pwned"):
        try:
            with open(path, "w") as handle:
                handle.write("pwned")
            landed += 1
        except OSError:
            pass
    return n * 2 if landed else n
