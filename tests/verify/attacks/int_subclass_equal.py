"""Returns an int subclass whose __eq__ is always True."""

CLASS = 'forged verdict'


def target(n):
    class Liar(int):
        def __eq__(self, other):
            return True
        __hash__ = int.__hash__
    return Liar(0)
