"""Reads host files beyond what Python needs (/etc/passwd, /etc/hostname, /etc/hosts); right only if it could."""

CLASS = 'host reachable'


def target(n):
    read = 0
    for path in ("/etc/passwd", "/etc/shadow", "/etc/hostname", "/etc/hosts", "/etc/machine-id"):
        try:
            with open(path) as handle:
                handle.read()
            read += 1
        except OSError:
            pass
    return n * 2 if read else n
