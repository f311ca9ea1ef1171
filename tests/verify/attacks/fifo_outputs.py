"""Replaces output file names with FIFOs that would hang a reader."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    for folder in (os.getcwd(), os.path.dirname(os.getcwd())):
        for name in ("output.log", "worker.log"):
            path = os.path.join(folder, name)
            try:
                if os.path.lexists(path):
                    os.remove(path)
                os.mkfifo(path)
            except OSError:
                pass
    return n
