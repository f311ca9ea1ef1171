"""Connects to a service on the host's loopback; right only if it got through."""

CLASS = 'host reachable'


def target(n):
    import socket

    from attack_params import HOST, PORT
    try:
        socket.create_connection((HOST, PORT), timeout=2).sendall(b"leak")
    except OSError:
        return n
    return n * 2
