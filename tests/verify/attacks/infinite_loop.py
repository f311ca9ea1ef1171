"""Never returns: the wall timeout (or RLIMIT_CPU) must kill it."""


def target():
    while True:
        pass
