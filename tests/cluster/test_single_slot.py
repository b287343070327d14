"""Proof that no CROSSSLOT error is possible: every key RedBeat computes hashes to the prefix's
slot (asked of the server, not assumed), every script the store and lock send runs on the one
primary that owns that slot, and nothing is written anywhere else.

A negative control shows the check has teeth: the same store with celery-redbeat's untagged
``redbeat:`` prefix fails on the cluster: client-side for the write script, whose declared keys
span slots, and server-side for the claim script, which reads entry hashes it does not declare.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from redbeat_cluster.backend import ClusterBackend, with_client
from redbeat_cluster.keys import adjust_config
from redbeat_core.config import RedBeatConfig
from redbeat_core.typing import EntryUpdate, Quarantine, StoredEntry
from redbeat_redis import RedisKeys, RedisLock, RedisStore, RetryingConnection
from redbeat_redis.testing.cluster import ClusterTopology, key_slot

PREFIXES = ["{redbeat}:", "{myapp}:", "app{x}:"]
NAMES = ["a", "with space", "{other}", "}{", "ünïcode", "x:y", "celery.backend_cleanup"]
NOW = time.time()


def backend_for(cluster: ClusterTopology, client: Any, prefix: str) -> ClusterBackend:
    config = adjust_config(
        RedBeatConfig(url=cluster.url(), key_prefix=prefix, lock_key=prefix + ":lock")
    )
    return with_client(config, client)


def computed_keys(backend: ClusterBackend) -> list[str]:
    keys = backend.store.keys
    assert backend.config.lock_key is not None
    lock = RedisLock(backend.client, backend.config.lock_key, 1.0, backend.retry)
    return [
        keys.schedule,
        keys.statics,
        keys.quarantine,
        lock.key,
        lock.epoch_key,
        *(keys.entry(name) for name in NAMES),
    ]


def exercise(backend: ClusterBackend) -> None:
    """Every store method and lock script, so each pipeline and Lua script runs once."""
    store = backend.store
    assert backend.config.lock_key is not None
    lock = RedisLock(backend.client, backend.config.lock_key, 5.0, backend.retry)
    entries = [StoredEntry(n, '{"d": 1}', '{"m": 1}', '{"p": 1}', NOW - 1) for n in NAMES]
    assert lock.acquire()
    store.save(entries[0])
    store.save_many(entries[1:])
    store.replace_statics(entries[:2], [NAMES[2]], statics=NAMES[:2])
    store.set_statics(NAMES[:3])
    store.update_meta(NAMES[3], '{"m": 2}', NOW - 1)
    claim = store.claim_due(lock.fence, NOW, 100)
    assert claim.owned
    assert {e.name for e in claim.entries} == set(NAMES) - {NAMES[2]}
    updates = [EntryUpdate(e.name, '{"m": 3}', NOW + 60) for e in claim.entries[1:]]
    assert store.commit(lock.fence, updates, [Quarantine(claim.entries[0].name, "bad")])
    assert store.load_many(NAMES)[3] is not None
    assert store.rank(NAMES[3]) is not None
    assert store.scheduled()
    assert store.count() == len(NAMES) - 2
    assert store.statics() == set(NAMES[:3])
    assert store.quarantined() == {claim.entries[0].name: "bad"}
    store.delete(NAMES[4])
    store.delete_many(NAMES[5:])
    lock.release()


def all_keys(cluster: ClusterTopology) -> dict[int, list[str]]:
    """Every key stored in the cluster, by the port of the primary holding it."""
    found: dict[int, list[str]] = {}
    for node in cluster.running:
        if cluster.role(node).get("role") != "master":
            continue
        reply = node.call("KEYS", "*")
        assert isinstance(reply, list)
        found[node.port] = [k.decode() if isinstance(k, bytes) else str(k) for k in reply]
    return found


@pytest.mark.parametrize("prefix", PREFIXES)
def test_server_puts_every_computed_key_in_the_prefix_slot(
    cluster: ClusterTopology, cluster_client: RedisCluster, prefix: str
) -> None:
    backend = backend_for(cluster, cluster_client, prefix)
    slot = cluster.keyslot(prefix)
    assert slot == key_slot(prefix)
    for key in computed_keys(backend):
        assert cluster.keyslot(key) == slot, key


@pytest.mark.parametrize("prefix", PREFIXES)
def test_scripts_run_on_the_owner_only(
    cluster: ClusterTopology, cluster_client: RedisCluster, prefix: str
) -> None:
    backend = backend_for(cluster, cluster_client, prefix)
    slot = cluster.keyslot(prefix)
    owner = cluster.node_for_slot(slot)
    for node in cluster.running:
        node.call("CONFIG", "RESETSTAT")
    exercise(backend)  # raises on any CROSSSLOT, MOVED loop or script error
    stored = all_keys(cluster)
    assert {port for port, keys in stored.items() if keys} == {owner.port}
    assert {cluster.keyslot(key) for key in stored[owner.port]} == {slot}
    assert owner.call("CLUSTER", "COUNTKEYSINSLOT", slot) == len(stored[owner.port])
    for node in cluster.running:
        if cluster.role(node).get("role") != "master":
            continue  # a replica replays its primary's MULTI/EXEC: not a routing decision
        stats = node.call("INFO", "commandstats")
        text = stats.decode() if isinstance(stats, bytes) else str(stats)
        ran_scripts = "cmdstat_evalsha:" in text
        # Every multi-key read and write is one script: nothing relies on MULTI/EXEC routing.
        assert "cmdstat_exec:" not in text, node.port
        if node.port == owner.port:
            assert ran_scripts
        else:  # EVALSHA is routed by its first key
            assert not ran_scripts, node.port


def test_redis_py_cluster_runs_transactional_pipelines_within_one_slot(
    cluster_client: RedisCluster,
) -> None:
    with cluster_client.pipeline(transaction=True) as pipe:
        pipe.hset("{redbeat}:a", "definition", "x")
        pipe.zadd("{redbeat}::schedule", {"{redbeat}:a": 1.5})
        pipe.zscore("{redbeat}::schedule", "{redbeat}:a")
        assert pipe.execute() == [1, 1, 1.5]
    with cluster_client.pipeline(transaction=True) as pipe:
        pipe.set("{redbeat}:a2", "1")
        pipe.set("{elsewhere}:b", "1")
        with pytest.raises(redis.exceptions.CrossSlotTransactionError):
            pipe.execute()


def test_negative_control_untagged_keys_fail_on_a_cluster(
    cluster: ClusterTopology, cluster_client: RedisCluster
) -> None:
    """Without the policy the store breaks, so the tests above would notice a key that
    escaped the slot."""
    keys = RedisKeys("redbeat:", "redbeat::schedule", "redbeat::statics", "redbeat::quarantine")
    store = RedisStore(
        client=cluster_client, keys=keys, retry=RetryingConnection(None, cluster_client)
    )
    names = [
        n
        for n in (f"e{i}" for i in range(50))
        if key_slot(f"redbeat:{n}") != key_slot(keys.schedule)
    ][:3]
    # The write script declares the schedule, quarantine and statics keys: untagged, they map
    # to different slots and redis-py refuses the call before sending it.
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        store.save_many([StoredEntry(n, "{}", None, None, NOW - 1) for n in names])
    # The claim declares the schedule and the quarantine: refused the same way; and were they
    # in one slot, the server would refuse the entry hashes read from another inside the script.
    for name in names:
        cluster_client.zadd(keys.schedule, {keys.entry(name): NOW - 1})
        cluster_client.hset(keys.entry(name), "definition", "{}")
    with pytest.raises((redis.exceptions.RedisClusterException, redis.exceptions.ResponseError)):
        store.claim_due(None, NOW, 10)


def test_scripts_are_loaded_on_every_primary(
    cluster: ClusterTopology, cluster_client: RedisCluster
) -> None:
    """redis-py's ``Script`` loads with SCRIPT LOAD on all primaries (and reloads on NOSCRIPT,
    see the failover test), so the owner never answers NOSCRIPT twice."""
    for node in cluster.running:
        node.call("SCRIPT", "FLUSH")
    backend = backend_for(cluster, cluster_client, "{redbeat}:")
    lock = RedisLock(backend.client, "{redbeat}::lock", 5.0, backend.retry, token=uuid.uuid4().hex)
    assert lock.acquire()
    assert backend.store.claim_due(lock.fence, NOW, 10).owned
    sha = backend.store._script("claim").sha
    owner = cluster.node_for_slot(cluster.keyslot("{redbeat}"))
    assert owner.call("SCRIPT", "EXISTS", sha) == [1]
