"""The test suite never opens a connection outside 127.0.0.1 (the project's rule).

An audit hook (``sys.addaudithook``) sees every ``socket.connect``/``sendto`` before the system
call and refuses any address that is not loopback, so a test (or a library it drives, or an
address in someone's test data) cannot reach another host even by mistake: the attempt fails
the test with a ``PermissionError`` naming the address. Installed in the pytest process by
``tests/conftest.py`` and in every Python subprocess the tests start, through this folder's
``sitecustomize`` (the folder is put first on ``PYTHONPATH``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

#: Set in the environment when the guard is on, so subprocesses install it too.
ENV = "REDBEAT_TEST_NETWORK_GUARD"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_installed = False


class NonLoopbackConnection(PermissionError):
    """A test tried to reach an address outside 127.0.0.1 (or ::1)."""


def is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a host name: refused, it would be resolved and reached elsewhere


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("socket.connect", "socket.sendto"):
        return
    sock, address = args[0], args[-1]
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return  # unix sockets and the like stay on this machine
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback(host):
        raise NonLoopbackConnection(
            f"the test suite may only connect to 127.0.0.1, not {address!r} "
            f"(guard: tests/_network_guard)"
        )


def install() -> None:
    """Install the guard in this process (once) and mark the environment for subprocesses."""
    global _installed  # noqa: PLW0603 (one audit hook per process: hooks cannot be removed)
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    os.environ[ENV] = "1"
