"""The suite's network guard refuses any connection outside 127.0.0.1, in the test process and
in the Python processes it starts, before a packet is sent (an audit hook runs before the
system call). 192.0.2.1 is TEST-NET-1 (RFC 5737), an address reserved for documentation."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import redbeat_network_guard
import redis


def test_a_connection_outside_loopback_fails_the_test() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(redbeat_network_guard.NonLoopbackConnection, match=r"192\.0\.2\.1"),
    ):
        sock.connect(("192.0.2.1", 9))


def test_a_client_library_is_stopped_too() -> None:
    client = redis.Redis(host="192.0.2.1", port=9, socket_connect_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError, match=r"only connect to 127\.0\.0\.1"):
        client.ping()


def test_host_names_other_than_localhost_are_refused() -> None:
    assert redbeat_network_guard.is_loopback("127.0.0.1")
    assert redbeat_network_guard.is_loopback("::1")
    assert redbeat_network_guard.is_loopback("localhost")
    assert not redbeat_network_guard.is_loopback("redis.example")
    assert not redbeat_network_guard.is_loopback("10.0.0.1")


def test_loopback_and_unix_sockets_work(tmp_path: object) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass


def test_python_subprocesses_are_guarded() -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('192.0.2.1', 9), timeout=5)\n"
        "except PermissionError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=True,
    )
    assert "refused: the test suite may only connect to 127.0.0.1" in done.stdout
