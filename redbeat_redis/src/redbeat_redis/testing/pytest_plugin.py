"""pytest fixtures that run tests against real Valkey and Redis servers.

``redbeat-redis`` registers this module as the pytest11 entry point ``redbeat``, so it is loaded
into every pytest run where ``redbeat-redis`` is installed, including users' own test suites
(its extra ``redbeat-redis[testing]`` brings pytest).
It therefore only defines fixtures: nothing is autouse, nothing starts at import, and every
name starts with ``redbeat_`` so that it never shadows a user's fixture. A server starts only
when a test asks for one of these fixtures.

Each test that uses ``redbeat_url`` runs once per server kind (``valkey``, ``redis``). A kind
whose binary is missing is skipped locally, with the install line, but fails when ``CI`` is
set: a CI run that quietly skipped every server test would prove nothing. Set
``REDBEAT_TEST_SERVERS=valkey`` (comma-separated) to run only the kinds you name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

import pytest

from redbeat_redis.testing import servers

__all__ = [
    "SERVERS_ENV",
    "redbeat_server",
    "redbeat_server_factory",
    "redbeat_server_kind",
    "redbeat_url",
]

#: Comma-separated server kinds to run; empty or unset means all of :data:`servers.KINDS`.
SERVERS_ENV = "REDBEAT_TEST_SERVERS"


def _selected_kinds() -> tuple[str, ...]:
    raw = os.environ.get(SERVERS_ENV, "")
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(set(names) - set(servers.KINDS))
    if unknown:
        # A typo must not turn into "every server test skipped".
        pytest.fail(
            f"{SERVERS_ENV}={raw!r} names unknown server kinds {unknown}; "
            f"known: {', '.join(servers.KINDS)}",
            pytrace=False,
        )
    return names or servers.KINDS


@pytest.fixture(scope="session", params=list(servers.KINDS))
def redbeat_server_kind(request: pytest.FixtureRequest) -> str:
    """The server kind this test runs against; skips (fails in CI) when it is not installed."""
    kind: str = request.param
    if kind not in _selected_kinds():
        pytest.skip(f"{kind} not selected by {SERVERS_ENV}={os.environ.get(SERVERS_ENV)!r}")
    if kind not in servers.find_server_binaries():
        message = (
            f"no {kind} server binary found: {servers.INSTALL_HINTS[kind]} "
            f"(or set {SERVERS_ENV} to the kinds you have)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}. A missing server fails in CI.", pytrace=False)
        pytest.skip(message)
    return kind


@pytest.fixture(scope="session")
def redbeat_server(redbeat_server_kind: str) -> Iterator[servers.ServerProcess]:
    """One server of the current kind, shared by the whole session and stopped by its pid.

    Starting a server takes tens of milliseconds, flushing it far less, so tests share one and
    ``redbeat_url`` flushes it. Tests that kill or reconfigure a server must use
    ``redbeat_server_factory`` instead.
    """
    server = servers.start_server(redbeat_server_kind)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redbeat_url(redbeat_server: servers.ServerProcess) -> str:
    """The shared server's URL, emptied (``FLUSHALL``) before this test so tests are isolated."""
    if not redbeat_server.is_running():
        # A test stopped the shared server by mistake: later tests still get a working one.
        redbeat_server.restart()
    with redbeat_server.client() as client:
        client.flushall()
    return redbeat_server.url


@pytest.fixture
def redbeat_server_factory(
    redbeat_server_kind: str,
) -> Iterator[Callable[..., servers.ServerProcess]]:
    """Start private servers of the current kind; all are stopped when the test ends.

    For tests that kill, restart or reconfigure a server (``extra_args=[...]``), which must not
    touch the shared one.
    """
    started: list[servers.ServerProcess] = []

    def start(*, extra_args: Iterable[str] = ()) -> servers.ServerProcess:
        server = servers.start_server(redbeat_server_kind, extra_args=extra_args)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
