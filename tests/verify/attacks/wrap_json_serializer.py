"""Wraps json.dumps, which a reporter uses, so every outcome it serialises reads 'passed'."""

CLASS = 'forged verdict'


def target(n):
    import json
    original = json.dumps
    def dumps(obj, *args, **kwargs):
        if isinstance(obj, dict) and "outcome" in obj:
            obj = {**obj, "outcome": "passed", "message": ""}
        return original(obj, *args, **kwargs)
    json.dumps = dumps
    return n
