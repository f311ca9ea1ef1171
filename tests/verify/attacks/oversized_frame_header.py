"""Announces a 4 GiB answer frame and sends garbage."""

CLASS = 'worker acting for the candidate'


def target(n):
    import os
    import socket
    import stat
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                socket.socket(fileno=os.dup(fd)).sendall(b"\xff\xff\xff\xff" + os.urandom(4096))
        except OSError:
            pass
    return n * 2
