"""Ports on 127.0.0.1 for servers a test or benchmark starts (dashboard, PostgreSQL, Ray):
`free_ports` is the warm runtime's own.

Nothing here imports pytest: benchmarks and scripts use it too.
"""

from __future__ import annotations

import socket

from runner.driver.runtime import free_ports

__all__ = ["free_port", "free_ports", "port_open"]


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (the kernel's pick)."""
    return free_ports(1)[0]


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0
