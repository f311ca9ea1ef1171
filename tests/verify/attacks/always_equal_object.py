"""Returns an object equal to everything."""

CLASS = 'forged verdict'


def target(n):
    class Anything:
        def __eq__(self, other):
            return True
        __hash__ = object.__hash__
    return Anything()
