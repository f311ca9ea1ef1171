"""Looks for sockets under /run, /var/run and /tmp of the host; right only if it finds any."""

CLASS = 'host reachable'


def target(n):
    import os
    import stat
    found = 0
    for root in ("/run", "/var/run", "/tmp", "/dev/shm"):
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames:
                try:
                    if stat.S_ISSOCK(os.lstat(os.path.join(dirpath, name)).st_mode):
                        found += 1
                except OSError:
                    pass
    return n * 2 if found else n
