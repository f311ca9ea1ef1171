"""Overwrites a file outside its work dir, and tries the real project and / too."""
from attack_params import OUTSIDE, PROJECT


def target():
    for path in (f"{PROJECT}/mod.py", "/budgetpass-pwned"):
        try:
            open(path, "w").write("pwned")
        except OSError:
            pass
    open(OUTSIDE, "w").write("pwned")
    return 42
