"""Connects to a world-writable unix socket on the host filesystem; right only if it got through."""

CLASS = 'host reachable'


def target(n):
    import socket

    from attack_params import UNIX_SOCKET
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(UNIX_SOCKET)
        s.sendall(b"leak")
    except OSError:
        return n
    return n * 2
