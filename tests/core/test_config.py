"""Settings: celery-redbeat's names, defaults and fallbacks, and start-up validation."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError


def config(**conf: Any) -> RedBeatConfig:
    app = Celery("config-test", set_as_current=False)
    app.conf.update({"broker_url": "memory://", **conf})
    return RedBeatConfig.from_app(app)


def test_celery_redbeat_defaults_and_key_names() -> None:
    c = config(redbeat_redis_url="redis://h:1/2")
    assert c.url == "redis://h:1/2"
    assert c.key_prefix == "redbeat:"
    assert c.schedule_key == "redbeat::schedule"  # two colons, as celery-redbeat writes it
    assert c.statics_key == "redbeat::statics"
    assert c.lock_key == "redbeat::lock"
    assert c.redis_url == c.url
    assert c.delivery == "at-most-once"


def test_upper_case_settings_are_read() -> None:
    c = config(REDBEAT_REDIS_URL="redis://up:1/0", REDBEAT_KEY_PREFIX="up:")
    assert (c.url, c.key_prefix, c.lock_key) == ("redis://up:1/0", "up:", "up::lock")


def test_a_lock_key_without_the_prefix_gets_it() -> None:
    assert config(redbeat_redis_url="redis://h", redbeat_lock_key="mylock").lock_key == (
        "redbeat:mylock"
    )


def test_lock_key_none_disables_locking() -> None:
    assert config(redbeat_redis_url="redis://h", redbeat_lock_key=None).lock_key is None


def test_broker_url_fallback_warns(caplog: pytest.LogCaptureFixture) -> None:
    app = Celery("fallback", set_as_current=False)
    app.conf.broker_url = "redis://broker:6379/0"
    with pytest.warns(DeprecationWarning, match="redbeat_redis_url"):
        c = RedBeatConfig.from_app(app)
    assert (c.url, c.url_setting) == ("redis://broker:6379/0", "broker_url")


def test_storage_neutral_url_setting_wins() -> None:
    c = config(redbeat_url="sqlite:///x.db", redbeat_redis_url="redis://h")
    assert (c.url, c.url_setting) == ("sqlite:///x.db", "redbeat_url")


def test_options_forwarded_only_when_set_explicitly() -> None:
    explicit = config(
        redbeat_redis_url="redis://h",
        redbeat_redis_options={"socket_timeout": 3, "retry_period": 10, "sentinels": []},
    )
    assert explicit.client_options == {"socket_timeout": 3}
    assert explicit.retry_period == 10
    with pytest.warns(DeprecationWarning, match="broker_transport_options"):
        inherited = config(
            redbeat_redis_url="redis://h", broker_transport_options={"visibility_timeout": 5}
        )
    assert inherited.client_options == {}


def test_timing_defaults_prepare_ahead_and_freeze() -> None:
    c = config(redbeat_redis_url="redis://h")
    assert c.prepare_ahead == 0.05
    assert c.gc_freeze is True
    off = config(redbeat_redis_url="redis://h", redbeat_prepare_ahead=0, redbeat_gc_freeze=False)
    assert (off.prepare_ahead, off.gc_freeze) == (0.0, False)


def test_replica_acks_are_off_unless_asked_for() -> None:
    c = config(redbeat_redis_url="redis://h")
    assert (c.replica_acks, c.replica_ack_timeout) == (0, 0.5)
    on = config(
        redbeat_redis_url="redis://h", redbeat_replica_acks=2, redbeat_replica_ack_timeout=1
    )
    assert (on.replica_acks, on.replica_ack_timeout) == (2, 1.0)
    # Unused without acks, so a lock shorter than the default timeout is no error then.
    assert config(redbeat_redis_url="redis://h", redbeat_lock_timeout=0.5).replica_acks == 0


def test_lock_timing_defaults_give_fast_failover() -> None:
    c = config(redbeat_redis_url="redis://h")
    assert c.lock_timeout == 10
    assert c.lock_renew_interval == pytest.approx(10 / 3)
    assert c.lock_poll_interval == 1


@pytest.mark.parametrize(
    ("conf", "setting"),
    [
        ({"redbeat_lock_timeout": 0}, "redbeat_lock_timeout"),
        ({"redbeat_lock_timeout": "ten"}, "redbeat_lock_timeout"),
        ({"redbeat_lock_timeout": 5, "redbeat_lock_renew_interval": 5}, "redbeat_lock_timeout"),
        ({"redbeat_lock_poll_interval": -1}, "redbeat_lock_poll_interval"),
        ({"redbeat_batch_size": 0}, "redbeat_batch_size"),
        ({"redbeat_prepare_ahead": -0.01}, "redbeat_prepare_ahead"),
        ({"redbeat_prepare_ahead": 2}, "redbeat_prepare_ahead"),
        ({"redbeat_prepare_ahead": "soon"}, "redbeat_prepare_ahead"),
        ({"redbeat_prepare_ahead": float("nan")}, "redbeat_prepare_ahead"),
        ({"redbeat_gc_freeze": "yes"}, "redbeat_gc_freeze"),
        ({"redbeat_replica_acks": -1}, "redbeat_replica_acks"),
        ({"redbeat_replica_acks": True}, "redbeat_replica_acks"),
        ({"redbeat_replica_acks": 1.5}, "redbeat_replica_acks"),
        ({"redbeat_replica_ack_timeout": 0}, "redbeat_replica_ack_timeout"),
        ({"redbeat_replica_ack_timeout": "1s"}, "redbeat_replica_ack_timeout"),
        # Not shorter than the renew interval (10 / 3 s by default): the lock could lapse.
        (
            {"redbeat_replica_acks": 1, "redbeat_replica_ack_timeout": 3.5},
            "redbeat_replica_ack_timeout",
        ),
        ({"redbeat_replica_acks": 1, "redbeat_lock_timeout": 1}, "redbeat_replica_ack_timeout"),
        ({"redbeat_delivery": "sometimes"}, "redbeat_delivery"),
        ({"redbeat_unknown_task": "drop"}, "redbeat_unknown_task"),
        ({"redbeat_key_prefix": ""}, "redbeat_key_prefix"),
        ({"redbeat_redis_options": ["not", "a", "dict"]}, "redbeat_redis_options"),
        ({"redbeat_redis_options": {"retry_period": -5}}, "retry_period"),
        ({"redbeat_plugins": 42}, "redbeat_plugins"),
    ],
)
def test_invalid_values_name_the_setting(conf: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        config(redbeat_redis_url="redis://h", **conf)
    assert info.value.setting.startswith(setting) or setting in str(info.value)


def test_retry_period_minus_one_means_forever() -> None:
    c = config(redbeat_redis_url="redis://h", redbeat_redis_options={"retry_period": -1})
    assert c.retry_period == -1
