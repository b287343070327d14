"""The backend contract suite and the connection forms, against a real Sentinel topology
(master + replica + three sentinels) of every server kind.

The store and the lock are the Redis backend's own, built by the Sentinel backend's factory on
a ``Sentinel(...).master_for(service)`` client: what these tests prove is that the client the
Sentinel backend builds is a complete substitute for a plain Redis client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import StoreUnavailableError
from redbeat_core.runtime import get_runtime
from redbeat_core.testing.contract import LockContract, StoreContract, entry
from redbeat_core.typing import Lock
from redbeat_redis.backend import RedisBackend
from redbeat_redis.testing.sentinel import SentinelTopology
from redbeat_redis.testing.servers import free_port

NOW = 1_700_000_000.0


@pytest.fixture
def backend(make_sentinel_app: Callable[..., Celery]) -> RedisBackend:
    backend = get_runtime(make_sentinel_app()).backend
    assert isinstance(backend, RedisBackend)
    return backend


@pytest.fixture
def store(backend: RedisBackend) -> Any:
    return backend.store


@pytest.fixture
def make_store(make_sentinel_app: Callable[..., Celery]) -> Callable[[], Any]:
    """Each store from an app of its own: its own Sentinel manager and master pool."""
    return lambda: get_runtime(make_sentinel_app()).store


class TestSentinelStore(StoreContract):
    #: A Sentinel topology whose master goes away fails over rather than going down: the
    #: store through a failover is tested in test_failover.py.
    supports_outage = False


class TestSentinelLock(LockContract):
    @pytest.fixture
    def make_lock(self, backend: RedisBackend) -> Callable[[float], Lock]:
        def make(ttl: float) -> Lock:
            config = attrs.evolve(backend.config, lock_timeout=ttl, lock_renew_interval=ttl / 3)
            return backend.make_lock(config)  # a new token: a new contender

        return make


# ----------------------------------------------------------------------------- the client


def round_trip(app: Celery) -> None:
    """Save an entry, read it back and tick once as leader: the connection really works."""
    RedBeatSchedulerEntry("probe", "tasks.probe", schedule(60), app=app).save()
    assert RedBeatSchedulerEntry.from_key("redbeat:probe", app=app).task == "tasks.probe"
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
    finally:
        scheduler.close()


def test_writes_go_to_the_master_and_reach_the_replica(
    backend: RedisBackend, sentinel_topology: SentinelTopology
) -> None:
    backend.store.save(entry("a", NOW))
    master = sentinel_topology.master()
    assert master.call("HGET", "redbeat:a", "definition") is not None
    (replica,) = sentinel_topology.replicas_of_master()
    wait_for(
        lambda: replica.call("ZSCORE", "redbeat::schedule", "redbeat:a") is not None,
        10,
        "the entry reached the replica",
    )


def test_celery_redbeat_form_against_real_sentinels(
    make_sentinel_app: Callable[..., Celery], sentinel_topology: SentinelTopology
) -> None:
    app = make_sentinel_app(
        redbeat_redis_url="redis-sentinel://",
        redbeat_redis_options={
            "sentinels": sentinel_topology.sentinel_addresses,
            "service_name": sentinel_topology.service,
            "socket_timeout": 5,
            "db": 1,
        },
    )
    round_trip(app)
    assert sentinel_topology.master().call("SELECT", 1) == b"OK"  # a fresh connection each call
    client = app.redbeat_redis  # type: ignore[attr-defined]
    assert client.connection_pool.connection_kwargs["db"] == 1
    assert client.hget("redbeat:probe", "definition") is not None


def test_acl_user_in_the_url(
    make_sentinel_app: Callable[..., Celery], sentinel_topology: SentinelTopology
) -> None:
    # ACL users are not replicated: create the user on every data node.
    nodes = [n for n in sentinel_topology.nodes if n.is_running()]
    for node in nodes:
        node.call("ACL", "SETUSER", "beat", "on", ">s3cret", "~*", "+@all")
    try:
        round_trip(
            make_sentinel_app(redbeat_redis_url=sentinel_topology.url(userinfo="beat:s3cret"))
        )
        wrong = make_sentinel_app(redbeat_redis_url=sentinel_topology.url(userinfo="beat:wrong"))
        with pytest.raises(StoreUnavailableError, match="invalid username-password"):
            get_runtime(wrong).store.count()
    finally:
        for node in nodes:
            node.call("ACL", "DELUSER", "beat")


def test_sentinel_acl_user_in_sentinel_kwargs(
    make_sentinel_app: Callable[..., Celery], sentinel_topology: SentinelTopology
) -> None:
    # The least a client needs on a sentinel: SENTINEL MASTERS (discovery) and PING.
    sentinels = sentinel_topology.sentinels
    for sentinel in sentinels:
        sentinel.call("ACL", "SETUSER", "beat", "on", ">spw", "-@all", "+sentinel|masters", "+ping")
    try:
        options = {"sentinel_kwargs": {"username": "beat", "password": "spw"}}
        round_trip(make_sentinel_app(redbeat_redis_options=options))
        options = {"sentinel_kwargs": {"username": "beat", "password": "wrong"}}
        wrong = make_sentinel_app(redbeat_redis_options=options)
        with pytest.raises(StoreUnavailableError, match="AuthenticationError"):
            get_runtime(wrong).store.count()
    finally:
        for sentinel in sentinels:
            sentinel.call("ACL", "DELUSER", "beat")


def test_closing_the_scheduler_drops_its_connections_to_the_sentinels_too(
    make_sentinel_app: Callable[..., Celery], sentinel_topology: SentinelTopology
) -> None:
    # Named connections, so that only ours are counted (sentinels also connect to each other).
    name = "redbeat-close-probe"
    options = {"client_name": name, "sentinel_kwargs": {"client_name": name}}
    app = make_sentinel_app(redbeat_redis_options=options)
    servers = [*sentinel_topology.sentinels, sentinel_topology.master()]

    def ours() -> dict[int, int]:
        listed = {s.port: str(s.call("CLIENT", "LIST")) for s in servers}
        return {port: text.count(f"name={name} ") for port, text in listed.items()}

    round_trip(app)  # which closes the scheduler; connect again, then close only the store
    stored = get_runtime(app).store.count()
    assert sum(ours().values()) >= 2, "a sentinel and the master each hold one of ours"
    get_runtime(app).store.close()
    wait_for(lambda: not any(ours().values()), 5, "every connection of ours closed")
    assert get_runtime(app).store.count() == stored  # and the client still works afterwards


def test_a_dead_sentinel_first_in_the_list_is_skipped(
    make_sentinel_app: Callable[..., Celery], sentinel_topology: SentinelTopology
) -> None:
    live = ",".join(f"{h}:{p}" for h, p in sentinel_topology.sentinel_addresses)
    url = f"redis+sentinel://127.0.0.1:{free_port()},{live}/{sentinel_topology.service}"
    app = make_sentinel_app(redbeat_redis_url=url)
    round_trip(app)
    dead = app.redbeat_sentinel.sentinels  # type: ignore[attr-defined]
    assert all(s.connection_pool.connection_kwargs["retry"].get_retries() == 0 for s in dead)


def test_unknown_service_is_a_transient_store_error(
    make_sentinel_app: Callable[..., Celery], sentinel_topology: SentinelTopology
) -> None:
    app = make_sentinel_app(redbeat_redis_url=sentinel_topology.url(service="nope"))
    with pytest.raises(StoreUnavailableError, match="No master found for 'nope'"):
        get_runtime(app).store.count()


def test_unreachable_sentinels_are_a_transient_store_error(
    make_sentinel_app: Callable[..., Celery],
) -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/mymaster"
    app = make_sentinel_app(redbeat_redis_url=url)
    with pytest.raises(StoreUnavailableError, match="No master found"):
        get_runtime(app).store.count()


@pytest.fixture
def demoted(
    backend: RedisBackend, sentinel_topology: SentinelTopology, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RedisBackend]:
    """The backend's client pointed at the replica, as if the master had been demoted while
    the client still talked to it."""
    (replica,) = sentinel_topology.replicas_of_master()
    sentinel = backend.client.connection_pool.sentinel_manager
    backend.client.connection_pool.disconnect()
    monkeypatch.setattr(sentinel, "discover_master", lambda service: (replica.host, replica.port))
    yield backend
    monkeypatch.undo()


def test_readonly_from_a_demoted_master_is_transient(demoted: RedisBackend) -> None:
    store = demoted.store
    with pytest.raises(StoreUnavailableError, match="previous master is now a slave"):
        store.save(entry("a", NOW))
    lock = demoted.make_lock(demoted.config)
    with pytest.raises(StoreUnavailableError, match="previous master is now a slave"):
        lock.acquire()
    assert not lock.held


def test_the_client_finds_the_master_again_after_readonly(
    demoted: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StoreUnavailableError):
        demoted.store.save(entry("a", NOW))
    monkeypatch.undo()  # the sentinels name the real master again
    demoted.store.save(entry("a", NOW))
    assert demoted.store.load("a") is not None
