"""Overwrites a file outside its work dir, and tries the real project and / too."""
from attack_params import OUTSIDE, PROJECT


def target():
    for path in (f"{PROJECT}/mod.py", "/budgetpass-pwned"):
        try:
            with open(path, "w") as handle:
                handle.write("pwned")
        except OSError:
            pass
    with open(OUTSIDE, "w") as handle:
        handle.write("pwned")
    return 42
