"""The single-slot key policy of the cluster backend (no server needed: it is applied when the
runtime is built, before any key is computed or any connection made)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from redbeat_cluster.backend import check_config
from redbeat_cluster.keys import CLUSTER_KEY_PREFIX, adjust_config, hash_tag, tagged_prefix
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.runtime import get_runtime
from redbeat_redis import RedisKeys, RedisLock
from redbeat_redis.settings import redis_config
from redbeat_redis.testing.cluster import key_slot

URL = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"


@pytest.fixture
def make_app() -> Iterator[Any]:
    apps: list[Celery] = []

    def make(url: str = URL, **conf: Any) -> Celery:
        app = Celery("key-policy", set_as_current=False)
        app.conf.update({"broker_url": "memory://", "redbeat_redis_url": url, **conf})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def config(**values: Any) -> RedBeatConfig:
    return redis_config(URL, **values)


@pytest.mark.parametrize(
    ("key", "tag"),
    [
        ("{redbeat}:", "redbeat"),
        ("{redbeat}::schedule", "redbeat"),
        ("app{x}:", "x"),
        ("redbeat:", None),
        ("{}redbeat:", None),  # an empty tag: the whole key is hashed
        ("{}{x}:", None),  # only the first { counts
        ("{redbeat:", None),
        ("}{x}:", "x"),
        ("{a}{b}", "a"),
    ],
)
def test_hash_tag_follows_the_cluster_rule(key: str, tag: str | None) -> None:
    assert hash_tag(key) == tag
    if tag is not None:
        assert key_slot(key) == key_slot(tag)


def test_default_prefix_becomes_hash_tagged() -> None:
    adjusted = adjust_config(config())
    assert adjusted.key_prefix == CLUSTER_KEY_PREFIX == "{redbeat}:"
    assert adjusted.schedule_key == "{redbeat}::schedule"
    assert adjusted.statics_key == "{redbeat}::statics"
    assert adjusted.quarantine_key == "{redbeat}::quarantine"
    assert adjusted.key_for("nightly") == "{redbeat}:nightly"
    assert adjusted.lock_key == "{redbeat}::lock"
    assert adjusted.name_for("{redbeat}:nightly") == "nightly"


def test_tagged_custom_prefix_is_kept_as_is() -> None:
    given = config(key_prefix="{myapp}:", lock_key="{myapp}::lock")
    assert adjust_config(given) is given


@pytest.mark.parametrize(
    ("prefix", "fixed"),
    [("myapp:", "{myapp}:"), ("myapp", "{myapp}"), ("a:b::", "{a:b}::"), ("{bad", "{bad}")],
)
def test_untagged_custom_prefix_is_refused_with_the_fix(prefix: str, fixed: str) -> None:
    assert tagged_prefix(prefix) == fixed
    assert hash_tag(fixed) is not None
    with pytest.raises(ConfigurationError) as caught:
        adjust_config(config(key_prefix=prefix, lock_key=prefix + ":lock"))
    assert caught.value.setting == "redbeat_key_prefix"
    assert repr(fixed) in str(caught.value)
    assert "migrat" in str(caught.value)


def test_lock_key_follows_the_default_prefix() -> None:
    # celery-redbeat prepends the prefix to a lock key without it: redbeat:mylock
    adjusted = adjust_config(config(lock_key="redbeat:mylock"))
    assert adjusted.lock_key == "{redbeat}:mylock"
    assert adjust_config(config(lock_key=None)).lock_key is None


def test_lock_key_in_another_slot_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        adjust_config(config(key_prefix="{myapp}:", lock_key="{other}:lock"))
    assert caught.value.setting == "redbeat_lock_key"
    assert "'{myapp}::lock'" in str(caught.value)
    # A different tag that happens to hash to the same slot is fine: slots are what matter.
    same_slot = next(f"t{i}" for i in range(100_000) if key_slot(f"t{i}") == key_slot("myapp"))
    adjusted = adjust_config(config(key_prefix="{myapp}:", lock_key="{" + same_slot + "}:lock"))
    assert adjusted.lock_key == "{" + same_slot + "}:lock"


@pytest.mark.parametrize("prefix", ["{redbeat}:", "{myapp}:", "app{x}:"])
def test_every_key_the_store_and_lock_compute_shares_the_prefix_slot(prefix: str) -> None:
    adjusted = adjust_config(config(key_prefix=prefix, lock_key=prefix + ":lock"))
    keys = RedisKeys.from_config(adjusted)
    assert adjusted.lock_key is not None
    lock = RedisLock(client=None, key=adjusted.lock_key, ttl=1.0, retry=None)  # type: ignore[arg-type]
    names = ["a", "with space", "{other}", "}{", "ünïcode", "x:y", ""]
    computed = [keys.schedule, keys.statics, keys.quarantine, lock.key, lock.epoch_key]
    computed += [keys.entry(name) for name in names]
    assert {key_slot(key) for key in computed} == {key_slot(prefix)}


# --------------------------------------------------------------------- through the runtime


def test_runtime_applies_the_policy_and_publishes_the_config(make_app: Any) -> None:
    app = make_app()
    runtime = get_runtime(app)
    assert runtime.config.key_prefix == "{redbeat}:"
    assert runtime.config.lock_key == "{redbeat}::lock"
    assert app.redbeat_conf.config is runtime.config  # celery-redbeat code reads it there
    assert app.redbeat_conf.key_prefix == "{redbeat}:"
    assert app.redbeat_conf.schedule_key == "{redbeat}::schedule"


@pytest.mark.parametrize("scheme", ["redis+cluster", "rediss+cluster", "redis-cluster"])
def test_every_cluster_scheme_applies_the_policy(make_app: Any, scheme: str) -> None:
    runtime = get_runtime(make_app(url=f"{scheme}://127.0.0.1:7000"))
    assert runtime.config.key_prefix == "{redbeat}:"


def test_explicit_default_prefix_is_treated_as_the_default(make_app: Any) -> None:
    runtime = get_runtime(make_app(redbeat_key_prefix="redbeat:"))
    assert runtime.config.key_prefix == "{redbeat}:"


def test_untagged_prefix_fails_at_start_up(make_app: Any) -> None:
    from redbeat import RedBeatScheduler

    app = make_app(redbeat_key_prefix="myapp:")
    with pytest.raises(ConfigurationError, match=r"redbeat_key_prefix.*'\{myapp\}:'"):
        RedBeatScheduler(app=app)


def test_custom_lock_key_via_settings_and_constructor(make_app: Any) -> None:
    app = make_app(redbeat_key_prefix="{myapp}:", redbeat_lock_key="beat-lock")
    assert get_runtime(app).config.lock_key == "{myapp}:beat-lock"  # prefix prepended
    app = make_app(redbeat_lock_key="beat-lock")
    assert get_runtime(app).config.lock_key == "{redbeat}:beat-lock"
    assert get_runtime(app, lock_key="other").config.lock_key == "{redbeat}:other"


def test_plain_redis_urls_keep_the_celery_redbeat_layout(make_app: Any) -> None:
    runtime = get_runtime(make_app(url="redis://127.0.0.1:6379/0", redbeat_key_prefix="myapp:"))
    assert runtime.config.key_prefix == "myapp:"
    assert get_runtime(make_app(url="redis://127.0.0.1:6379/0")).config.key_prefix == "redbeat:"


def test_waiting_for_replicas_is_refused_at_start_up(make_app: Any) -> None:
    """WAIT through redis-py's cluster client goes to every primary on other connections than
    the commit's, so its count would not be about the commit: refused, naming the setting."""
    app = make_app(redbeat_replica_acks=1)
    with pytest.raises(ConfigurationError) as info:
        get_runtime(app)
    assert info.value.setting == "redbeat_replica_acks"
    assert "0 on Redis Cluster" in str(info.value)
    assert check_config(config(replica_acks=0)) == adjust_config(config())
