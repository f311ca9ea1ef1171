"""Rewrites the module files of the project copy it imports from, for the next candidate."""

CLASS = 'host reachable'


def target(n):
    import sys
    landed = 0
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if path.endswith(("mod.py", "attack_params.py", "test_mod.py")):
            try:
                with open(path, "a") as handle:
                    handle.write("\ntarget = lambda n: n * 2\n")
                landed += 1
            except OSError:
                pass
    return n * 2 if landed else n
