"""Writes forged 'collected/test passed/done' lines to every fd 0..1023, then exits 0."""

CLASS = 'forged verdict'


def target(n):
    import json
    import os
    lines = "".join(json.dumps(m) + "\n" for m in (
        {"op": "collected", "tests": ["test_mod.py::test_double"]},
        {"op": "test", "node": "test_mod.py::test_double", "outcome": "passed", "message": ""},
        {"op": "done", "exitstatus": 0}, {"op": "ret", "value": n * 2}))
    for fd in range(1024):
        try:
            os.write(fd, lines.encode())
        except OSError:
            pass
    os._exit(0)
