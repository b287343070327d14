"""How the cluster backend reads its URL and options (no server needed: parsing does no I/O)."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import pytest
from redis.cluster import ClusterNode

from redbeat_cluster.connection import cluster_target, uses_cluster
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_redis.connection import TEXT_REPLIES
from redbeat_redis.settings import redis_config


def config(url: str, options: dict[str, Any] | None = None, **values: Any) -> RedBeatConfig:
    return redis_config(url, options=options, **values)


def test_redis_cluster_url_lists_the_startup_nodes() -> None:
    target = cluster_target(config("redis+cluster://h1:7000,h2:7001,h3"))
    assert target.nodes == (("h1", 7000), ("h2", 7001), ("h3", 6379))
    assert not target.tls
    assert target.kwargs == dict(TEXT_REPLIES)
    assert [(n.host, n.port) for n in target.startup_nodes()] == list(target.nodes)
    assert target.describe() == "h1:7000,h2:7001,h3:6379"


def test_ipv6_credentials_database_zero_and_query_options() -> None:
    target = cluster_target(
        config("redis+cluster://beat:p%40ss@[::1]:7000,[fe80::1]/0?socket_timeout=1.5&protocol=3")
    )
    assert target.nodes == (("::1", 7000), ("fe80::1", 6379))
    assert target.describe() == "[::1]:7000,[fe80::1]:6379"
    assert target.kwargs == {
        **TEXT_REPLIES,
        "username": "beat",
        "password": "p@ss",
        "socket_timeout": 1.5,
        "protocol": 3,
    }
    password_only = cluster_target(config("redis+cluster://:secret@h1:7000/"))
    assert password_only.kwargs["password"] == "secret"
    assert "username" not in password_only.kwargs


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://h1:7000/1", "only database 0"),
        ("redis+cluster://h1:7000/?db=2", "only database 0"),
        ("redis+cluster://h1:70000", "port '70000'"),
        ("redis+cluster://h1:x", "port 'x'"),
        ("redis+cluster://h1:7000,,h2:7001", "empty node"),
        ("redis+cluster://:7000", "no host"),
        ("redis+cluster://", "at least one node"),
        ("redis+cluster://[::1", "cannot read the node list"),
        ("redis+cluster://[::1]x", "cannot read the node"),
    ],
)
def test_bad_urls_fail_with_the_setting_and_the_reason(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        cluster_target(config(url))
    assert caught.value.setting == "redbeat_redis_url"


def test_errors_never_show_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        cluster_target(config("redis+cluster://beat:topsecret@h1:7000/3"))
    assert "topsecret" not in str(caught.value)


def test_rediss_cluster_verifies_certificates_by_default() -> None:
    target = cluster_target(config("rediss+cluster://h1:7000"))
    assert target.tls
    assert target.kwargs["ssl"] is True
    assert target.kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_tls_options_come_from_redbeat_redis_use_ssl() -> None:
    tls = {"ssl_ca_certs": "/ca.pem", "ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem"}
    target = cluster_target(config("rediss+cluster://h1:7000", use_ssl=tls))
    assert target.kwargs["ssl_ca_certs"] == "/ca.pem"
    assert target.kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    relaxed = cluster_target(config("rediss+cluster://h1:7000", use_ssl={"ssl_cert_reqs": "none"}))
    assert relaxed.kwargs["ssl_cert_reqs"] == "none"
    # Without a TLS scheme, redbeat_redis_use_ssl (which defaults to broker_use_ssl) does not
    # switch TLS on.
    plain = cluster_target(config("redis+cluster://h1:7000", use_ssl=tls))
    assert not plain.tls
    assert "ssl" not in plain.kwargs
    # amqp-style keys (broker_use_ssl of another broker) are named with their setting
    with pytest.raises(ConfigurationError, match="keyfile") as caught:
        cluster_target(config("rediss+cluster://h1:7000", use_ssl={"keyfile": "/k"}))
    assert caught.value.setting == "redbeat_redis_use_ssl"


def test_client_options_pass_through_and_the_url_wins() -> None:
    target = cluster_target(
        config(
            "redis+cluster://h1:7000?socket_timeout=2",
            {"socket_timeout": 9, "password": "x", "require_full_coverage": False},
        )
    )
    assert target.kwargs["socket_timeout"] == 2
    assert target.kwargs["password"] == "x"
    assert target.kwargs["require_full_coverage"] is False


def test_options_inherited_from_the_broker_are_not_passed() -> None:
    inherited = redis_config(
        "redis+cluster://h1:7000",
        options={"visibility_timeout": 3600, "socket_timeout": 1},
        inherited=True,
    )
    assert cluster_target(inherited).kwargs == dict(TEXT_REPLIES)


def test_unknown_options_fail_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="sokcet_timeout") as caught:
        cluster_target(config("redis+cluster://h1:7000", {"sokcet_timeout": 1}))
    assert caught.value.setting == "redbeat_redis_options"


def test_options_redis_cluster_would_drop_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        target = cluster_target(config("redis+cluster://h1:7000", {"health_check_interval": 5}))
    assert "health_check_interval" not in target.kwargs
    assert "health_check_interval" in caplog.text
    with pytest.raises(ConfigurationError, match="ssl_min_version"):
        cluster_target(config("rediss+cluster://h1:7000", {"ssl_min_version": 3}))


def test_database_option_must_be_zero() -> None:
    assert "db" not in cluster_target(config("redis+cluster://h1:7000", {"db": 0})).kwargs
    with pytest.raises(ConfigurationError, match=r"redbeat_redis_options\['db'\]"):
        cluster_target(config("redis+cluster://h1:7000", {"db": 1}))


# --------------------------------------------------------------------- celery-redbeat's forms


def test_celery_redbeat_startup_nodes_as_dicts_with_string_ports() -> None:
    nodes = [{"host": "10.0.0.1", "port": "7000"}, {"host": "10.0.0.2", "port": 7001}]
    target = cluster_target(config("redis-cluster://", {"startup_nodes": nodes}))
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert "startup_nodes" not in target.kwargs
    assert target.kwargs["decode_responses"] is True


def test_startup_nodes_as_cluster_nodes_pairs_and_strings() -> None:
    nodes = [ClusterNode("a", 7000), ("b", "7001"), "c:7002", "[::1]:7003"]
    target = cluster_target(config("redis-cluster://ignored:1", {"startup_nodes": nodes}))
    assert target.nodes == (("a", 7000), ("b", 7001), ("c", 7002), ("::1", 7003))


def test_startup_nodes_from_inherited_options_are_used_like_celery_redbeat() -> None:
    inherited = redis_config(
        "redis-cluster://", options={"startup_nodes": [{"host": "h", "port": 1}]}, inherited=True
    )
    assert cluster_target(inherited).nodes == (("h", 1),)


def test_redis_cluster_url_without_startup_nodes() -> None:
    assert cluster_target(config("redis-cluster://h1:7000,h2:7001")).nodes == (
        ("h1", 7000),
        ("h2", 7001),
    )
    # celery-redbeat 2.4.2's default when neither names a node (an empty list names none)
    assert cluster_target(config("redis-cluster://")).nodes == (("localhost", 30001),)
    empty = config("redis-cluster://", {"startup_nodes": []})
    assert cluster_target(empty).nodes == (("localhost", 30001),)


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ({"host": "a", "port": 1}, "a list of nodes"),
        ("a:1", "a list of nodes"),
        ([None], "cannot read the node None"),
        ([{"port": 7000}], "has no 'host'"),
        ([{"host": "a", "port": "seven"}], "port 'seven'"),
        ([{"host": "a", "port": 0}], "port 0"),
        ([42], "cannot read the node 42"),
    ],
)
def test_bad_startup_nodes_name_the_option(nodes: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        cluster_target(config("redis-cluster://", {"startup_nodes": nodes}))
    assert caught.value.setting == "redbeat_redis_options['startup_nodes']"


def test_cluster_option_on_a_redis_url() -> None:
    plain = config("redis://h1:7000/0", {"cluster": True, "socket_timeout": 3})
    assert uses_cluster(plain)
    target = cluster_target(plain)
    assert target.nodes == (("h1", 7000),)
    assert target.kwargs == {**TEXT_REPLIES, "socket_timeout": 3}
    tls = cluster_target(config("rediss://h1:7000", {"cluster": True}))
    assert tls.tls
    assert tls.kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_what_is_not_a_cluster_url() -> None:
    assert not uses_cluster(config("redis://h1:7000/0"))
    assert not uses_cluster(config("redis://h1:7000/0", {"cluster": False}))
    assert not uses_cluster(config("unix:///tmp/s.sock", {"cluster": True}))
    with pytest.raises(ConfigurationError, match="not a Redis Cluster URL"):
        cluster_target(config("redis://h1:7000/0"))


# ------------------------------------------------- celery-redbeat's forms, as it builds them


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("redis-cluster://", {"startup_nodes": [{"host": "h", "port": 7000}]}),
        ("redis://h:7000/0", {"cluster": True}),
    ],
)
def test_celery_redbeat_forms_take_the_client_options_of_broker_transport_options(
    url: str, options: dict[str, Any]
) -> None:
    """celery-redbeat 2.4.2 passes the broker's options to RedisCluster in these two forms:
    ``max_connections`` reaches the client, the broker's own ``visibility_timeout`` does not."""
    broker = {**options, "max_connections": 20, "socket_timeout": 2, "visibility_timeout": 3600}
    target = cluster_target(redis_config(url, options=broker, inherited=True))
    assert target.kwargs == {**TEXT_REPLIES, "max_connections": 20, "socket_timeout": 2}


def test_cluster_option_on_a_url_without_a_host_means_localhost() -> None:
    target = cluster_target(config("redis://", {"cluster": True}))
    assert target.nodes == (("localhost", 6379),)


def test_client_construction_is_looked_up_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests intercept the client as they do celery-redbeat's: by patching
    ``redis.cluster.RedisCluster`` (``RedisCluster(...)`` for ``redis-cluster://``) or its
    ``from_url`` (``{'cluster': True}``). No connection is made."""
    import redis.cluster

    from redbeat_cluster.connection import build_client

    built: list[tuple[str, Any, dict[str, Any]]] = []

    class Intercepted:
        def __init__(self, **kwargs: Any) -> None:
            built.append(("init", kwargs.pop("startup_nodes"), kwargs))

        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> Any:
            built.append(("from_url", url, kwargs))
            return "from_url"

    monkeypatch.setattr(redis.cluster, "RedisCluster", Intercepted)
    client = build_client(config("redis-cluster://", {"startup_nodes": [{"host": "h", "port": 1}]}))
    assert isinstance(client, Intercepted)
    assert [(n.host, n.port) for n in built[0][1]] == [("h", 1)]
    assert build_client(config("redis://h:7000/0", {"cluster": True})) == "from_url"
    assert built[1][:2] == ("from_url", "redis://h:7000")
