"""Never returns: the wall timeout (or RLIMIT_CPU) must end it."""

CLASS = 'limits per candidate'


def target(n):
    while True:
        pass
