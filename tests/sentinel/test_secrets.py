"""No secret given to the Sentinel backend is ever shown: beats start, tick and fail with the
master's and the sentinels' passwords in every form the URL and ``redbeat_redis_options``
take, and nothing RedBeat logs, raises or reprs contains them.

ACL users with those passwords are created on every data node and every sentinel (ACL users
are not replicated) and deleted afterwards; the sentinels' default user stays open, as the
topology's own checks use it.
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
from redbeat_redis.testing.sentinel import SentinelTopology
from redbeat_redis.testing.servers import free_port

SECRET = "Zx9-master-secret"
SPECIAL = "Zx9/sp?ec#ial@pw%"
SENTINEL_SECRET = "Zx9-sentinel-secret"
WRONG = "Zx9-wrong-secret"
SHOWN_NEVER = (SECRET, SPECIAL, quote(SPECIAL, safe=""), SENTINEL_SECRET, WRONG, "Zx9")


@pytest.fixture
def users(sentinel_topology: SentinelTopology) -> Iterator[SentinelTopology]:
    nodes = [node for node in sentinel_topology.nodes if node.is_running()]
    for node in nodes:
        node.call("ACL", "SETUSER", "beat", "on", f">{SECRET}", "~*", "+@all")
        node.call("ACL", "SETUSER", "special", "on", f">{SPECIAL}", "~*", "+@all")
    for sentinel in sentinel_topology.sentinels:
        sentinel.call(
            "ACL", "SETUSER", "beat", "on", f">{SENTINEL_SECRET}", "-@all",
            "+sentinel|masters", "+ping",
        )  # fmt: skip
    try:
        yield sentinel_topology
    finally:
        for node in nodes:
            node.call("ACL", "DELUSER", "beat", "special")
        for sentinel in sentinel_topology.sentinels:
            sentinel.call("ACL", "DELUSER", "beat")


def forms(topology: SentinelTopology) -> list[tuple[str, dict[str, Any]]]:
    """Every way to give the Sentinel backend passwords: (URL, redbeat_redis_options)."""
    sentinel_auth = {"sentinel_kwargs": {"username": "beat", "password": SENTINEL_SECRET}}
    url = topology.url()
    return [
        (topology.url(userinfo=f"beat:{SECRET}"), {}),
        (topology.url(userinfo=f"special:{quote(SPECIAL, safe='')}"), sentinel_auth),
        (topology.url(userinfo=f":{SECRET}"), {}),  # the default user (no password needed)
        (f"{url}&username=beat&password={SECRET}", {}),
        (url, {"username": "beat", "password": SECRET, **sentinel_auth}),
        (
            "redis-sentinel://",
            {
                "sentinels": topology.sentinel_addresses,
                "service_name": topology.service,
                "username": "beat",
                "password": SECRET,
                **sentinel_auth,
            },
        ),
    ]


def test_no_password_form_is_ever_shown(
    users: SentinelTopology, make_sentinel_app: Callable[..., Celery]
) -> None:
    with exposure() as shown:
        for url, options in forms(users):
            conf = {"redbeat_redis_options": options} if options else {}
            run_a_beat(make_sentinel_app(redbeat_redis_url=url, **conf), shown)
    shown.assert_hidden(*SHOWN_NEVER)
    where = users.url().partition("://")[2]
    assert f"redis -> redis+sentinel://beat:**@{where}" in shown.text


def test_no_password_is_shown_when_things_go_wrong(
    users: SentinelTopology, make_sentinel_app: Callable[..., Celery]
) -> None:
    url = users.url()
    dead = f"redis+sentinel://:{SECRET}@127.0.0.1:{free_port()}/{users.service}"
    wrong_sentinel = {"sentinel_kwargs": {"username": "beat", "password": WRONG}}
    failures: list[tuple[str, dict[str, Any], type[Exception]]] = [
        (users.url(userinfo=f"beat:{WRONG}"), {}, StoreUnavailableError),
        (url, {"username": "beat", "password": WRONG}, StoreUnavailableError),
        (url, {"password": SECRET, **wrong_sentinel}, StoreUnavailableError),
        (dead, {"sentinel_kwargs": {"password": SENTINEL_SECRET}}, StoreUnavailableError),
        (f"{url}&sokcet_timeout=1&password={SECRET}", {}, ConfigurationError),
        (url, {"password": SECRET, "sentinel_kwargs": {"pasword": WRONG}}, ConfigurationError),
        (url, {"password": SECRET, "sentinel_kwargs": "pw=" + WRONG}, ConfigurationError),
        (f"redis+sentinel://:{SECRET}@h1.invalid:x/m", {"password": WRONG}, ConfigurationError),
        (f"redis+sentinel://beat:{SECRET}@127.0.0.1:1", {}, ConfigurationError),  # no service
    ]
    with exposure() as shown:
        for url, options, error in failures:
            conf = {"redbeat_redis_options": options} if options else {}
            with pytest.raises(error) as caught:
                RedBeatScheduler(app=make_sentinel_app(redbeat_redis_url=url, **conf))
            shown.add(caught.value)
    shown.assert_hidden(*SHOWN_NEVER)
    assert "invalid username-password pair" in shown.text
