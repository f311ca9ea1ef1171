"""Rewrites every test function's code object to one that passes."""

CLASS = 'forged verdict'


def target(n):
    import gc
    import types
    def passing(*args, **kwargs):
        return None
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and obj.__name__.startswith("test_"):
            try:
                obj.__code__ = passing.__code__
            except (ValueError, TypeError):
                pass
    return n
