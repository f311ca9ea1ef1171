"""Writes forged 'passed' and 'done' lines to every open fd (the report pipe among them), exits 0."""
import json
import os


def target():
    lines = "".join(json.dumps(m) + "\n" for m in (
        {"op": "test", "node": "test_mod.py::test_target", "outcome": "passed", "message": ""},
        {"op": "done", "exitstatus": 0}))
    for fd in range(3, 64):
        try:
            os.write(fd, lines.encode())
        except OSError:
            pass
    os._exit(0)
