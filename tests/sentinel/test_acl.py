"""The ACL rules of the security guide behind Sentinel: the data nodes need the rules of the
Redis backend (on every node: ACL users are not replicated, and a replica may be promoted),
the sentinels need only their own small rule, and each command of it is needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from acl_features import run_beat, run_entries, seed_for_a_beat
from celery import Celery

from redbeat_core.testing.apps import celery_apps
from redbeat_redis import acl
from redbeat_redis.testing.sentinel import SentinelTopology

PASSWORD = "acl-test-pw"
SENTINEL_PASSWORD = "acl-test-sentinel-pw"


@pytest.fixture
def users(sentinel_topology: SentinelTopology) -> Iterator[Callable[..., None]]:
    """``grant(data_rule, sentinel_rule)``: the user ``beat`` with exactly these rules on every
    data node and every sentinel; deleted at the end."""
    nodes = [node for node in sentinel_topology.nodes if node.is_running()]

    def grant(data_rule: str, sentinel_rule: str = acl.rule("sentinels")) -> None:
        for node in nodes:
            node.call("ACL", "SETUSER", "beat", "reset", "on", f">{PASSWORD}", *data_rule.split())
        for sentinel in sentinel_topology.sentinels:
            sentinel.call(
                "ACL", "SETUSER", "beat", "reset", "on", f">{SENTINEL_PASSWORD}",
                *sentinel_rule.split(),
            )  # fmt: skip

    try:
        yield grant
    finally:
        for node in nodes:
            node.call("ACL", "DELUSER", "beat")
        for sentinel in sentinel_topology.sentinels:
            sentinel.call("ACL", "DELUSER", "beat")


@pytest.fixture
def apps(sentinel_topology: SentinelTopology) -> Iterator[Callable[..., Celery]]:
    """Apps logged in as ``beat`` on the data nodes and on the sentinels."""
    url = sentinel_topology.url(userinfo=f"beat:{PASSWORD}")
    options = {"sentinel_kwargs": {"username": "beat", "password": SENTINEL_PASSWORD}}
    with celery_apps(url, name="sentinel-acl") as make:

        def make_app(**conf: Any) -> Celery:
            return make(redbeat_redis_url=url, redbeat_redis_options=options, **conf)

        yield make_app


@pytest.fixture
def admin(
    sentinel_topology: SentinelTopology, make_sentinel_app: Callable[..., Celery]
) -> Callable[..., Celery]:
    def reset(feature: str = "") -> Celery:
        sentinel_topology.flush()
        sentinel_topology.call_on_master("SCRIPT", "FLUSH")
        app = make_sentinel_app()
        if feature == "beat":
            seed_for_a_beat(app)
        return app

    return reset


def test_a_beat_and_the_entry_api_under_exactly_their_rules(
    users: Callable[..., None], apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    users(acl.rule("beat"))
    outcome = run_beat(apps, admin("beat"))
    assert outcome.fine, outcome.text
    users(acl.rule("entries"))
    outcome = run_entries(apps, admin())
    assert outcome.fine, outcome.text


def test_every_command_of_the_sentinels_rule_is_needed(
    users: Callable[..., None], apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    items = acl.rule("sentinels").split()
    for item in items:
        users(acl.rule("entries"), " ".join(i for i in items if i != item))
        outcome = run_entries(apps, admin())
        assert not outcome.fine, f"the sentinels' rule works without {item}: drop it"
        assert f"ACL SETUSER beat {item}" in outcome.text  # their user, their command


def test_replica_acks_need_wait_on_the_master(
    users: Callable[..., None], apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    conf = {"redbeat_replica_acks": 1, "redbeat_replica_ack_timeout": 1.0}
    users(acl.rule("beat"))
    without = run_beat(apps, admin("beat"), **conf)
    assert without.worked, without.text  # it goes on...
    assert len(without.shown) == 1, without.text  # ...and says once what to grant
    assert "ACL SETUSER beat +wait" in without.shown[0]
    users(acl.rule("beat", "replica_acks"))
    outcome = run_beat(apps, admin("beat"), **conf)
    assert outcome.fine, outcome.text
