"""The cluster backend through RedBeat's public face, against a real cluster: every URL form
connects, the scheduler dispatches, celery-redbeat's ``app.redbeat_redis`` conventions hold,
an ACL user limited to ``{redbeat}:*`` keys is enough, and failures are clear."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from celery.signals import before_task_publish
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_cluster import plugin as cluster_plugin
from redbeat_cluster.backend import ClusterBackend, create_backend
from redbeat_cluster.connection import CLUSTER_CALL_RETRIES
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError
from redbeat_core.registry import BackendRegistry
from redbeat_core.runtime import get_runtime
from redbeat_core.typing import StoredEntry
from redbeat_redis import RetryingConnection
from redbeat_redis import acl as acl_rules
from redbeat_redis import plugin as redis_plugin
from redbeat_redis.settings import redis_config
from redbeat_redis.testing.cluster import ClusterTopology
from redbeat_redis.testing.servers import ServerProcess, free_port

MakeApp = Callable[..., Celery]

#: The rules of the security guide: a beat and the entry API on a cluster, command by command
#: and in categories (tests/cluster/test_acl.py shows each command of the first is needed).
MINIMAL_ACL = tuple(acl_rules.rule("beat", "entries", "cluster", prefix="{redbeat}:").split())
CATEGORY_ACL = (*acl_rules.category_rule("{redbeat}:").split(), "+cluster|slots", "+command")


def due(app: Celery, name: str) -> RedBeatSchedulerEntry:
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(60), app=app)
    entry.last_run_at = datetime.now(UTC) - timedelta(minutes=5)
    entry.save()
    return entry


def run_beat(app: Celery) -> list[str]:
    """Start a beat (static sync), tick twice as leader and return what it published."""
    published: list[str] = []

    def record(headers: Any = None, **_: Any) -> None:
        published.append(headers["task"])

    before_task_publish.connect(record, weak=False)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
    finally:
        scheduler.close()
        before_task_publish.disconnect(record)
    return published


def stored_keys(cluster: ClusterTopology) -> set[str]:
    keys: set[str] = set()
    for node in cluster.running:
        if cluster.role(node).get("role") == "master":
            reply = node.call("KEYS", "*")
            assert isinstance(reply, list)
            keys |= {k.decode() if isinstance(k, bytes) else str(k) for k in reply}
    return keys


def test_scheduler_dispatches_and_stores_everything_under_the_tagged_prefix(
    cluster: ClusterTopology, make_cluster_app: MakeApp
) -> None:
    app = make_cluster_app(
        beat_schedule={"static": {"task": "tasks.static", "schedule": 60.0}},
    )
    due(app, "dynamic")
    assert run_beat(app) == ["tasks.dynamic"]  # the new static entry is due in 60 s
    assert stored_keys(cluster) == {
        "{redbeat}::schedule",
        "{redbeat}::statics",
        "{redbeat}::lock:epoch",
        "{redbeat}::lock:holder",
        "{redbeat}::history",  # the run history: the schedule's, and the entry's that ran
        "{redbeat}::history:dynamic",
        "{redbeat}::audit",  # the saves and the start-up sync, audited
        "{redbeat}:static",
        "{redbeat}:dynamic",
        "{redbeat}:celery.backend_cleanup",  # Celery's default entry
    }  # the lock itself was released on close
    assert isinstance(app.redbeat_redis, RedisCluster)  # celery-redbeat compat
    assert app.redbeat_redis.retry.get_retries() == CLUSTER_CALL_RETRIES
    runtime = get_runtime(app)
    assert isinstance(runtime.backend, ClusterBackend)
    assert runtime.backend.describe() == f"redis cluster -> {cluster.url()}"
    loaded = RedBeatSchedulerEntry.from_key("{redbeat}:dynamic", app=app)
    assert loaded.total_run_count == 1
    loaded.delete()
    assert "{redbeat}:dynamic" not in stored_keys(cluster)


def test_celery_redbeat_startup_nodes_given_as_dicts_with_string_ports(
    cluster: ClusterTopology, make_cluster_app: MakeApp
) -> None:
    """The form celery-redbeat 2.4.2 cannot start with on redis-py >= 5."""
    nodes = [{"host": host, "port": str(port)} for host, port in cluster.startup_nodes[:2]]
    app = make_cluster_app(
        redbeat_redis_url="redis-cluster://",
        redbeat_redis_options={
            "startup_nodes": nodes,
            "socket_timeout": 5,
            "retry": Retry(NoBackoff(), 1),  # a RedisCluster option, passed through
        },
    )
    due(app, "dicts")
    assert run_beat(app) == ["tasks.dicts"]
    assert app.redbeat_redis.retry.get_retries() == 1


def test_startup_nodes_as_cluster_nodes(
    cluster: ClusterTopology, make_cluster_app: MakeApp
) -> None:
    host, port = cluster.startup_nodes[-1]  # a replica is a fine start-up node
    app = make_cluster_app(
        redbeat_redis_url="redis-cluster://",
        redbeat_redis_options={"startup_nodes": [ClusterNode(host, port)]},
    )
    due(app, "nodes")
    assert run_beat(app) == ["tasks.nodes"]


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_client_assigned_to_app_redbeat_redis_is_used(
    cluster: ClusterTopology, make_cluster_app: MakeApp, wrapped: bool
) -> None:
    host, port = cluster.startup_nodes[0]
    client = RedisCluster(host=host, port=port)
    try:
        app = make_cluster_app(redbeat_redis_url="redis+cluster://unused.invalid:1")
        app.redbeat_redis = RetryingConnection(None, client) if wrapped else client
        due(app, "assigned")
        assert run_beat(app) == ["tasks.assigned"]
        assert get_runtime(app).backend.client is client  # type: ignore[attr-defined]
    finally:
        client.close()


@pytest.mark.parametrize("acl", [MINIMAL_ACL, CATEGORY_ACL], ids=["minimal", "categories"])
def test_acl_user_limited_to_the_prefix(
    cluster: ClusterTopology, make_cluster_app: MakeApp, acl: tuple[str, ...]
) -> None:
    for node in cluster.nodes:  # ACLs are per node
        node.call("ACL", "SETUSER", "beat", "reset", "on", ">s3cret", *acl)
    try:
        host, port = cluster.startup_nodes[0]
        app = make_cluster_app(
            redbeat_redis_url=f"redis+cluster://beat:s3cret@{host}:{port}",
            beat_schedule={"static": {"task": "tasks.static", "schedule": 60.0}},
        )
        due(app, "acl")
        assert run_beat(app) == ["tasks.acl"]
        RedBeatSchedulerEntry.from_key("{redbeat}:acl", app=app).delete()
        app = make_cluster_app(redbeat_redis_url=f"redis+cluster://beat:wrong@{host}:{port}")
        with pytest.raises(StoreUnavailableError, match=r"(?i)password|auth"):
            RedBeatScheduler(app=app)
    finally:
        for node in cluster.nodes:
            node.call("ACL", "DELUSER", "beat")


def test_unreachable_cluster_fails_at_start_up_naming_the_nodes(make_cluster_app: MakeApp) -> None:
    port = free_port(cluster=True)
    app = make_cluster_app(
        redbeat_redis_url=f"redis+cluster://127.0.0.1:{port}",
        redbeat_redis_options={"socket_connect_timeout": 1},
    )
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
        RedBeatScheduler(app=app)


def test_a_server_without_cluster_mode_is_reported(
    redbeat_server_factory: Callable[..., ServerProcess], make_cluster_app: MakeApp
) -> None:
    server = redbeat_server_factory()
    app = make_cluster_app(redbeat_redis_url=f"redis+cluster://127.0.0.1:{server.port}")
    with pytest.raises(StoreUnavailableError, match=r"(?i)cluster"):
        RedBeatScheduler(app=app)


def test_bad_options_fail_before_any_connection(make_cluster_app: MakeApp) -> None:
    app = make_cluster_app(redbeat_redis_options={"sokcet_timeout": 1})
    with pytest.raises(ConfigurationError, match="sokcet_timeout"):
        RedBeatScheduler(app=app)


# --------------------------------------------------------------------- {'cluster': True}


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_cluster_option_routes_to_the_cluster_scheme(scheme: str) -> None:
    options = {"cluster": True}
    config = redis_config(f"{scheme}://h:1/0", options=options)
    assert cluster_plugin.route(config) == f"{scheme}+cluster"
    assert cluster_plugin.route(RedBeatConfig(url=f"{scheme}://h:1/0")) is None
    assert cluster_plugin.route(RedBeatConfig(url="redis+cluster://h:1")) is None


def test_cluster_option_with_a_redis_url_through_the_registry(
    cluster: ClusterTopology, make_cluster_app: MakeApp
) -> None:
    host, port = cluster.startup_nodes[1]
    app = make_cluster_app(
        redbeat_redis_url=f"redis://{host}:{port}/0",
        redbeat_redis_options={"cluster": True},
    )
    registry = BackendRegistry()
    redis_plugin.redbeat_register_backends(registry)
    cluster_plugin.redbeat_register_backends(registry)
    config = registry.adjust(RedBeatConfig.from_app(app))
    assert config.key_prefix == "{redbeat}:"
    backend = registry.create(config, app)
    assert isinstance(backend, ClusterBackend)
    assert isinstance(app.redbeat_redis, RedisCluster)
    backend.store.save(StoredEntry("probe", '{"name": "probe"}', None, None, 1.0))
    assert "{redbeat}:probe" in stored_keys(cluster)


def test_cluster_option_with_a_redis_url_through_the_installed_registry(
    cluster: ClusterTopology, make_cluster_app: MakeApp
) -> None:
    host, port = cluster.startup_nodes[1]
    app = make_cluster_app(
        redbeat_redis_url=f"redis://{host}:{port}/0",
        redbeat_redis_options={"cluster": True},
    )
    due(app, "routed")
    assert run_beat(app) == ["tasks.routed"]


def test_factory_accepts_the_cluster_option_directly(
    cluster: ClusterTopology, make_cluster_app: MakeApp
) -> None:
    host, port = cluster.startup_nodes[2]
    app = make_cluster_app()
    config = redis_config(
        f"redis://{host}:{port}/0", options={"cluster": True}, key_prefix="{redbeat}:"
    )
    backend = create_backend(config, app)
    assert isinstance(backend.client, RedisCluster)
    assert backend.store.count() == 0
