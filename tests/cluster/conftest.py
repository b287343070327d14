"""Fixtures for the Redis Cluster tests: one real six-node cluster per server kind.

The cluster (three primaries, three replicas; see ``redbeat_redis.testing.cluster``) is started
once per session and kind, because building it takes seconds. Every test that asks for
``cluster`` gets it healthy (a node a failover test killed is started again and rejoins as a
replica) and empty (FLUSHALL on every primary). The kinds follow the ``redbeat`` pytest plugin's
``redbeat_server_kind``: a missing binary skips locally and fails in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from celery import Celery
from redis.cluster import RedisCluster

from redbeat_core.testing.apps import celery_apps
from redbeat_redis.testing.cluster import ClusterTopology, start_cluster


@pytest.fixture(scope="session")
def cluster_topology(redbeat_server_kind: str) -> Iterator[ClusterTopology]:
    """The session's cluster of the current kind, stopped (by pids) at the end."""
    topology = start_cluster(redbeat_server_kind)
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def cluster(cluster_topology: ClusterTopology) -> ClusterTopology:
    """The session's cluster, healthy and empty."""
    cluster_topology.ensure_healthy()
    cluster_topology.flushall()
    return cluster_topology


@pytest.fixture
def cluster_client(cluster: ClusterTopology) -> Iterator[RedisCluster]:
    """A decoding ``RedisCluster`` client on the session's cluster."""
    host, port = cluster.startup_nodes[0]
    client = RedisCluster(host=host, port=port, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def make_cluster_app(cluster: ClusterTopology) -> Iterator[Callable[..., Celery]]:
    """Celery apps (``memory://`` broker) whose RedBeat storage is the session's cluster."""
    with celery_apps(cluster.url(), name="redbeat-cluster-test") as make:
        yield make
