"""Finds every object with a 'send' or 'fd' attribute in memory and makes it report passes."""

CLASS = 'forged verdict'


def target(n):
    import gc
    import json
    import os
    for obj in gc.get_objects():
        fd = getattr(obj, "fd", None) if not isinstance(obj, type) else None
        if isinstance(fd, int) and fd > 2:
            for node in ("test_mod.py::test_double", "test_mod.py::test_in_fixture"):
                try:
                    os.write(fd, (json.dumps({"op": "test", "node": node, "outcome": "passed", "message": ""}) + "\n").encode())
                except OSError:
                    pass
    return n
