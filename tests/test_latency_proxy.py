"""The benchmarks' latency proxy (``benchmarks/latency_proxy.py``): a real proxy process in front
of a real server. It must add its round trip to every request, not stack one delay per chunk
when requests are pipelined, and pass every byte through unchanged. The bounds are loose on
purpose (a floor the delay cannot undercut, a ceiling far from what stacked delays would
take), so a busy machine cannot make them flake; the proxy is stopped by its pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from redbeat_redis.testing.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
RTT_MS = 40.0


def _start_proxy(target_port: int, rtt_ms: float) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.latency_proxy",
            *("--listen", "127.0.0.1:0", "--to", f"127.0.0.1:{target_port}"),
            *("--rtt-ms", str(rtt_ms)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the proxy's first line, printed once it listens
    if not line.startswith("listening 127.0.0.1:"):
        proc.kill()
        _, err = proc.communicate(timeout=15)
        pytest.fail(f"the proxy did not start: {line!r}\n{err}")
    return proc, int(line.rsplit(":", 1)[1])


@pytest.fixture
def proxied(redbeat_server: ServerProcess) -> Iterator[int]:
    """The port of a proxy adding ``RTT_MS`` in front of the session's server."""
    proc, port = _start_proxy(redbeat_server.port, RTT_MS)
    try:
        yield port
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            assert proc.wait(timeout=15) == 0, "the proxy exits cleanly on SIGTERM"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _fastest(call: Callable[[], object], times: int = 5) -> float:
    best = float("inf")
    for _ in range(times):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def test_each_round_trip_is_delayed_by_the_configured_time(
    redbeat_server: ServerProcess, proxied: int
) -> None:
    direct = redis.Redis(port=redbeat_server.port, socket_timeout=10)
    through = redis.Redis(port=proxied, socket_timeout=10)
    with direct, through:
        direct.ping()
        through.ping()  # connect outside the measurement
        added = _fastest(through.ping) - _fastest(direct.ping)
    # Even the fastest PING through the proxy pays the delay (it is a floor, never skipped).
    assert added >= 0.8 * RTT_MS / 1000, f"added {added * 1000:.1f} ms, rtt {RTT_MS} ms"


def test_pipelined_chunks_are_not_delayed_one_after_another(proxied: int) -> None:
    """Forty PINGs written as forty chunks, then the forty replies read: a proxy that slept
    half a round trip per chunk, one chunk after another, would take 40 x 20 ms (800 ms) for
    the requests alone; one that stamps each chunk when it arrives forwards each 20 ms later,
    so the whole exchange takes about one round trip plus the writing."""
    with socket.create_connection(("127.0.0.1", proxied), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        for _ in range(40):
            sock.sendall(b"PING\r\n")
            time.sleep(0.001)  # spacing, so the proxy reads separate chunks (not a wait)
        expected = b"+PONG\r\n" * 40
        got = b""
        while len(got) < len(expected):
            chunk = sock.recv(4096)
            assert chunk, f"the proxy closed the connection after {got!r}"
            got += chunk
        took = time.perf_counter() - t0
    assert got == expected
    assert took >= 0.8 * RTT_MS / 1000
    assert took < 10 * RTT_MS / 1000, f"{took * 1000:.0f} ms for 40 pipelined PINGs"


def test_bytes_pass_unchanged_both_ways(redbeat_server: ServerProcess, proxied: int) -> None:
    payload = os.urandom(3 * 1024 * 1024) + bytes(range(256)) * 16  # many chunks, every byte
    direct = redis.Redis(port=redbeat_server.port, socket_timeout=30)
    through = redis.Redis(port=proxied, socket_timeout=30)
    with direct, through:
        through.set("latency-proxy:payload", payload)
        assert direct.get("latency-proxy:payload") == payload  # what reached the server
        direct.set("latency-proxy:back", payload[::-1])
        assert through.get("latency-proxy:back") == payload[::-1]  # what came back through
        direct.delete("latency-proxy:payload", "latency-proxy:back")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--listen", "0.0.0.0:0"), ("--to", "10.0.0.1:6379"), ("--rtt-ms", "-1")],
)
def test_only_loopback_and_a_sane_delay_are_accepted(option: str, value: str) -> None:
    args = {"--listen": "127.0.0.1:0", "--to": "127.0.0.1:6379", "--rtt-ms": "1", option: value}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.latency_proxy", *(x for kv in args.items() for x in kv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert option in done.stderr
    assert value in done.stderr
    assert "127.0.0.1" in done.stderr or "milliseconds" in done.stderr
