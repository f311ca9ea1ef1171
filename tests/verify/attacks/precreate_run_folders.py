"""Pre-creates run folders (and symlinks named like them) wherever it can, to break the next candidate."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    for folder in ("/tmp/s", os.path.dirname(os.getcwd()), os.path.dirname(os.path.dirname(os.getcwd())), "/tmp"):
        for i in range(50):
            for name in (f"run-{i}", f"run-{i:016x}"):
                try:
                    os.mkdir(os.path.join(folder, name))
                except OSError:
                    pass
                try:
                    os.symlink("/", os.path.join(folder, name + "-link"))
                except OSError:
                    pass
    return n
