"""The backend contract suite against a real six-node cluster (Valkey and Redis), on the
cluster backend's own client, retry policy and ``{redbeat}:`` keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from redbeat_cluster.backend import ClusterBackend, with_client
from redbeat_cluster.keys import adjust_config
from redbeat_core.config import RedBeatConfig
from redbeat_core.testing.contract import LockContract, Outage, StoreContract
from redbeat_core.typing import Lock, StoredEntry
from redbeat_redis import RedisLock, RedisStore
from redbeat_redis.testing.cluster import ClusterTopology, start_cluster


def cluster_backend(cluster: ClusterTopology, client: Any) -> ClusterBackend:
    config = adjust_config(RedBeatConfig(url=cluster.url()))
    return with_client(config, client)


@pytest.fixture
def backend(cluster: ClusterTopology, cluster_client: RedisCluster) -> ClusterBackend:
    return cluster_backend(cluster, cluster_client)


@pytest.fixture
def store(backend: ClusterBackend) -> RedisStore:
    assert backend.store.keys.prefix == "{redbeat}:"
    return backend.store


@pytest.fixture
def make_store(cluster: ClusterTopology) -> Iterator[Callable[[], RedisStore]]:
    """Each store on a ``RedisCluster`` client of its own, as another beat process has."""
    clients: list[RedisCluster] = []

    def make() -> RedisStore:
        host, port = cluster.startup_nodes[0]
        clients.append(RedisCluster(host=host, port=port, decode_responses=True))
        return cluster_backend(cluster, clients[-1]).store

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def outage_cluster(redbeat_server_kind: str) -> Iterator[ClusterTopology]:
    """Three primaries and no replica, so that a primary that stops answering is an outage
    of its slots, not a failover; stopped by pids at the end of the module."""
    topology = start_cluster(redbeat_server_kind, primaries=3, replicas_per_primary=0)
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def store_outage(outage_cluster: ClusterTopology) -> Iterator[Outage]:
    """The primary of the schedule's slot crashes (SIGKILL, by its pid) after a snapshot, and
    starts again from its nodes.conf and that snapshot. With no replica to take over, the
    other primaries mark it failed and the whole cluster answers CLUSTERDOWN until it is
    back."""
    outage_cluster.ensure_healthy()
    outage_cluster.flushall()
    node = outage_cluster.node_for_key("{redbeat}::schedule")
    host, port = outage_cluster.startup_nodes[0]
    client = RedisCluster(host=host, port=port, decode_responses=True)

    def begin() -> None:
        node.call("SAVE")  # the data the test wrote, kept through the crash
        node.kill()

    try:
        yield Outage(
            cluster_backend(outage_cluster, client).store,
            begin=begin,
            end=lambda: outage_cluster.restart_node(node),
        )
    finally:
        client.close()
        outage_cluster.ensure_healthy()


class TestClusterStore(StoreContract):
    pass


class TestClusterLock(LockContract):
    @pytest.fixture
    def make_lock(self, backend: ClusterBackend) -> Callable[[float], Lock]:
        def make(ttl: float) -> Lock:
            assert backend.config.lock_key == "{redbeat}::lock"
            return RedisLock(
                client=backend.client,
                key=backend.config.lock_key,
                ttl=ttl,
                retry=backend.retry,
                token=uuid.uuid4().hex,
            )

        return make


class TestUndecodedClusterClient(StoreContract):
    """A ``RedisCluster`` assigned by the user may not decode responses; the store copes."""

    @pytest.fixture
    def store(self, cluster: ClusterTopology) -> Iterator[RedisStore]:
        host, port = cluster.startup_nodes[0]
        client = RedisCluster(host=host, port=port)  # bytes responses
        yield cluster_backend(cluster, client).store
        client.close()


def test_closed_store_reconnects_and_leaves_the_client_usable(
    cluster: ClusterTopology, cluster_client: RedisCluster
) -> None:
    """The scheduler closes its store when it stops; the store (and a user's client) must
    work again afterwards, as the ScheduleStore protocol says."""
    store = cluster_backend(cluster, cluster_client).store
    store.save(StoredEntry("a", "{}", None, None, 1.0))
    store.close()
    assert store.count() == 1
    assert cluster_client.zcard("{redbeat}::schedule") == 1
