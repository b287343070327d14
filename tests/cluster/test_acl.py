"""The ACL rules of the security guide on Redis Cluster: the rules of the Redis backend plus
what the cluster client needs, on every node (ACL users are per node), each command needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from acl_features import run_beat, run_entries, seed_for_a_beat
from celery import Celery

from redbeat_core.testing.apps import celery_apps
from redbeat_redis import acl
from redbeat_redis.testing.cluster import ClusterTopology

PASSWORD = "acl-test-pw"
PREFIX = "{redbeat}:"


@pytest.fixture
def users(cluster: ClusterTopology) -> Iterator[Callable[[str], None]]:
    """``grant(rule)``: the user ``beat`` with exactly ``rule`` on every node; deleted after."""

    def grant(rule: str) -> None:
        for node in cluster.nodes:
            node.call("ACL", "SETUSER", "beat", "reset", "on", f">{PASSWORD}", *rule.split())

    try:
        yield grant
    finally:
        for node in cluster.running:
            node.call("ACL", "DELUSER", "beat")


@pytest.fixture
def apps(cluster: ClusterTopology) -> Iterator[Callable[..., Celery]]:
    hosts = cluster.url().partition("://")[2]
    url = f"redis+cluster://beat:{PASSWORD}@{hosts}"
    with celery_apps(url, name="cluster-acl") as make:

        def make_app(**conf: Any) -> Celery:
            return make(redbeat_redis_url=url, **conf)

        yield make_app


@pytest.fixture
def admin(
    cluster: ClusterTopology, make_cluster_app: Callable[..., Celery]
) -> Callable[..., Celery]:
    def reset(feature: str = "") -> Celery:
        cluster.flushall()
        for node in cluster.running:
            node.call("SCRIPT", "FLUSH")
        app = make_cluster_app()
        if feature == "beat":
            seed_for_a_beat(app)
        return app

    return reset


def test_a_beat_and_the_entry_api_under_exactly_their_rules(
    users: Callable[[str], None], apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    users(acl.rule("beat", "cluster", prefix=PREFIX))
    outcome = run_beat(apps, admin("beat"))
    assert outcome.fine, outcome.text
    users(acl.rule("entries", "cluster", prefix=PREFIX))
    outcome = run_entries(apps, admin())
    assert outcome.fine, outcome.text


def test_every_command_the_cluster_client_adds_is_needed(
    users: Callable[[str], None], apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    items = acl.rule("entries", "cluster", prefix=PREFIX).split()
    for item in acl.FEATURES["cluster"]:
        users(" ".join(i for i in items if i != f"+{item}"))
        outcome = run_entries(apps, admin())
        assert not outcome.fine, f"the cluster works without +{item}: drop it"
        assert f"ACL SETUSER beat +{item}" in outcome.text, outcome.text
