"""No secret given to the Cluster backend is ever shown: beats start, tick and fail with
passwords in every form the cluster URLs and ``redbeat_redis_options`` take, and nothing
RedBeat logs, raises or reprs contains them.

The ACL users with those passwords are created on every node (ACL users are per node) and
deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from celery import Celery
from redbeat_test_support import exposure, run_a_beat

from redbeat import RedBeatScheduler
from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError
from redbeat_redis.testing.cluster import ClusterTopology
from redbeat_redis.testing.servers import free_port

SECRET = "Zx9-cluster-secret"
SPECIAL = "Zx9/sp?ec#ial@pw%"
WRONG = "Zx9-wrong-secret"
SHOWN_NEVER = (SECRET, SPECIAL, quote(SPECIAL, safe=""), WRONG, "Zx9")


@pytest.fixture
def users(cluster: ClusterTopology) -> Iterator[ClusterTopology]:
    for node in cluster.nodes:
        node.call("ACL", "SETUSER", "beat", "on", f">{SECRET}", "~*", "+@all")
        node.call("ACL", "SETUSER", "special", "on", f">{SPECIAL}", "~*", "+@all")
    try:
        yield cluster
    finally:
        for node in cluster.running:
            node.call("ACL", "DELUSER", "beat", "special")


def forms(cluster: ClusterTopology) -> list[tuple[str, dict[str, Any]]]:
    """Every way to give the Cluster backend a password: (URL, redbeat_redis_options)."""
    hosts = cluster.url().partition("://")[2]
    host, port = cluster.startup_nodes[0]
    login = {"username": "beat", "password": SECRET}
    return [
        (f"redis+cluster://beat:{SECRET}@{hosts}", {}),
        (f"redis+cluster://special:{quote(SPECIAL, safe='')}@{hosts}", {}),
        (f"redis+cluster://{hosts}/0?username=beat&password={SECRET}", {}),
        (f"redis+cluster://{hosts}", login),
        ("redis-cluster://", {"startup_nodes": [{"host": host, "port": port}], **login}),
        (f"redis://{host}:{port}/0", {"cluster": True, **login}),
    ]


def test_no_password_form_is_ever_shown(
    users: ClusterTopology, make_cluster_app: Callable[..., Celery]
) -> None:
    with exposure() as shown:
        for url, options in forms(users):
            conf = {"redbeat_redis_options": options} if options else {}
            run_a_beat(make_cluster_app(redbeat_redis_url=url, **conf), shown)
    shown.assert_hidden(*SHOWN_NEVER)
    hosts = users.url().partition("://")[2]
    assert f"redis cluster -> redis+cluster://beat:**@{hosts}" in shown.text
    assert f"redis cluster -> redis+cluster://{hosts}/0?username=beat&password=**" in shown.text


def test_no_password_is_shown_when_things_go_wrong(
    users: ClusterTopology, make_cluster_app: Callable[..., Celery]
) -> None:
    hosts = users.url().partition("://")[2]
    dead = f"redis+cluster://:{SECRET}@127.0.0.1:{free_port(cluster=True)}"
    failures: list[tuple[str, dict[str, Any], type[Exception]]] = [
        (f"redis+cluster://beat:{WRONG}@{hosts}", {}, StoreUnavailableError),
        (
            f"redis+cluster://{hosts}",
            {"username": "beat", "password": WRONG},
            StoreUnavailableError,
        ),
        (dead, {"socket_connect_timeout": 1}, StoreUnavailableError),
        (f"redis+cluster://beat:{SECRET}@{hosts}/3", {}, ConfigurationError),
        (f"redis+cluster://{hosts}", {"password": SECRET, "pasword": WRONG}, ConfigurationError),
        (
            f"redis+cluster://{hosts}",
            {"password": SECRET, "ssl_pasword": WRONG},
            ConfigurationError,
        ),
        (f"redis+cluster://:{SECRET}@h1.invalid:x", {}, ConfigurationError),
    ]
    with exposure() as shown:
        for url, options, error in failures:
            conf = {"redbeat_redis_options": options} if options else {}
            with pytest.raises(error) as caught:
                RedBeatScheduler(app=make_cluster_app(redbeat_redis_url=url, **conf))
            shown.add(caught.value)
    shown.assert_hidden(*SHOWN_NEVER)
    assert "pasword" in shown.text, "the misspelled option is named, without its value"
