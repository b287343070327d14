"""The Redis backends' settings, declared by redbeat-redis: celery-redbeat's names, fallbacks
and attributes, RedBeat's replica acks, and what the ``redbeat`` distribution says about
schemes that are not installed."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from celery import Celery

import redbeat.schedulers
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError, UnknownBackendError
from redbeat_core.runtime import get_runtime
from redbeat_redis.settings import RedisSettings


def config(**conf: Any) -> RedBeatConfig:
    app = Celery("redis-settings", set_as_current=False)
    app.conf.update({"broker_url": "memory://", **conf})
    return RedBeatConfig.from_app(app)


def test_redbeat_redis_url_is_another_name_for_the_storage_url() -> None:
    c = config(redbeat_redis_url="redis://h:1/2")
    assert (c.url, c.url_setting) == ("redis://h:1/2", "redbeat_redis_url")
    assert c.redis_url == c.url  # type: ignore[attr-defined]  # celery-redbeat's attribute
    both = config(redbeat_url="redis://a:1/0", redbeat_redis_url="redis://b:1/0")
    assert (both.url, both.url_setting) == ("redis://a:1/0", "redbeat_url")


def test_the_broker_url_fallback_names_both_settings() -> None:
    app = Celery("fallback", set_as_current=False)
    app.conf.broker_url = "redis://broker:6379/0"
    with pytest.warns(DeprecationWarning, match="set redbeat_url or redbeat_redis_url"):
        c = RedBeatConfig.from_app(app)
    assert (c.url, c.url_setting) == ("redis://broker:6379/0", "broker_url")


def test_options_forwarded_only_when_set_explicitly() -> None:
    explicit = RedisSettings.of(
        config(
            redbeat_redis_url="redis://h",
            redbeat_redis_options={"socket_timeout": 3, "retry_period": 10, "sentinels": []},
        )
    )
    assert explicit.client_options == {"socket_timeout": 3}
    assert explicit.retry_period == 10
    with pytest.warns(DeprecationWarning, match="broker_transport_options"):
        inherited_config = config(
            redbeat_redis_url="redis://h", broker_transport_options={"visibility_timeout": 5}
        )
    inherited = RedisSettings.of(inherited_config)
    assert inherited.client_options == {}
    assert inherited.options == {"visibility_timeout": 5}
    # celery-redbeat's attribute reads the options with their fallback.
    assert inherited_config.redbeat_redis_options == {"visibility_timeout": 5}  # type: ignore[attr-defined]


def test_use_ssl_falls_back_to_the_brokers() -> None:
    c = config(redbeat_redis_url="rediss://h", broker_use_ssl={"ssl_cert_reqs": "none"})
    # Celery's strings become ssl constants (redis-py refuses 'CERT_NONE'; see test_tls_*).
    assert RedisSettings.of(c).use_ssl == {"ssl_cert_reqs": ssl.CERT_NONE}
    assert RedisSettings.of(c).use_ssl_source == "broker_use_ssl"
    assert c.redis_use_ssl == {"ssl_cert_reqs": ssl.CERT_NONE}  # type: ignore[attr-defined]


def test_retry_period_minus_one_means_forever() -> None:
    c = config(redbeat_redis_url="redis://h", redbeat_redis_options={"retry_period": -1})
    assert RedisSettings.of(c).retry_period == -1


def test_replica_acks_are_off_unless_asked_for() -> None:
    off = RedisSettings.of(config(redbeat_redis_url="redis://h"))
    assert (off.replica_acks, off.replica_ack_timeout) == (0, 0.5)
    on = RedisSettings.of(
        config(redbeat_redis_url="redis://h", redbeat_replica_acks=2, redbeat_replica_ack_timeout=1)
    )
    assert (on.replica_acks, on.replica_ack_timeout) == (2, 1.0)
    # Unused without acks, so a lock shorter than the default timeout is no error then.
    assert config(redbeat_redis_url="redis://h", redbeat_lock_timeout=0.5).lock_timeout == 0.5


@pytest.mark.parametrize(
    ("conf", "setting"),
    [
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
        ({"redbeat_redis_options": ["not", "a", "dict"]}, "redbeat_redis_options"),
        ({"redbeat_redis_options": {"retry_period": -5}}, "redbeat_redis_options['retry_period']"),
        ({"redbeat_redis_use_ssl": "yes"}, "redbeat_redis_use_ssl"),
    ],
)
def test_invalid_values_name_the_setting_and_the_plugin(conf: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        config(redbeat_redis_url="redis://h", **conf)
    assert info.value.setting == setting
    assert "the plugin redbeat-redis" in str(info.value)


def test_the_facade_config_reads_the_same_values() -> None:
    app = Celery("facade-config", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_redis_url="redis://h:1/3")
    facade = redbeat.schedulers.RedBeatConfig(app)
    assert (facade.redis_url, facade.schedule_key) == ("redis://h:1/3", "redbeat::schedule")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("memcached://h", "Install the plugin that provides it"),
        ("sqlite3:///tmp/x.db", "Install the plugin that provides it"),
        ("redis+clusterr://:s3cret@h:7000", "Install the plugin that provides it"),
    ],
)
def test_unknown_schemes_say_what_to_do(url: str, hint: str) -> None:
    app = Celery("unknown", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_redis_url=url)
    with pytest.raises(UnknownBackendError) as info:
        get_runtime(app).backend  # noqa: B018
    assert hint in str(info.value)
    assert "redbeat_redis_url" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_the_redbeat_distribution_names_the_extras_of_its_schemes() -> None:
    from redbeat._plugin import SCHEME_PROVIDERS

    assert SCHEME_PROVIDERS["redis+cluster"] == "the extra `redbeat[cluster]`"
    assert SCHEME_PROVIDERS["redis-sentinel"] == "the extra `redbeat[sentinel]`"
    assert "pip install ./examples/redbeat-sqlite" in SCHEME_PROVIDERS["sqlite"]
    registry = get_runtime(_app("redis://h")).registry
    registry_hints = {scheme: registry._hints.get(scheme) for scheme in SCHEME_PROVIDERS}
    assert registry_hints == SCHEME_PROVIDERS


def _app(url: str) -> Any:
    app = Celery("hints", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_redis_url=url)
    return app


def test_a_misspelled_redis_setting_is_named_with_the_right_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found before settings were declared: ``redbeat_redis_ulr`` quietly used the broker's
    database, ``redbeat_lock_timout = 30`` quietly kept 10 s."""
    app = Celery("misspelled", set_as_current=False)
    app.conf.update(
        broker_url="redis://127.0.0.1:6399/0",
        redbeat_redis_ulr="redis://127.0.0.1:6399/5",
        REDBEAT_LOCK_TIMOUT=30,
    )
    with (
        caplog.at_level("WARNING", logger="celery.beat"),
        pytest.warns(DeprecationWarning, match="falls back to broker_url"),
    ):
        runtime = get_runtime(app)
    assert runtime.config.url == "redis://127.0.0.1:6399/0"  # the fallback, as before...
    assert "redbeat_redis_ulr is not declared" in caplog.text  # ...but said
    assert "did you mean redbeat_redis_url?" in caplog.text
    assert "REDBEAT_LOCK_TIMOUT is not declared" in caplog.text
    assert "did you mean redbeat_lock_timeout?" in caplog.text


def test_settings_from_add_defaults_survive_celery_finalizing_the_app() -> None:
    """celery-redbeat reads an ``add_defaults`` setting only if it looks it up before Celery
    finalizes the configuration (which drops them); a Sentinel URL set that way was lost.
    RedBeat keeps them, whatever it reads first."""
    app = Celery("early-defaults", broker="memory://", set_as_current=False)
    app.conf.add_defaults(
        {
            "redbeat_redis_url": "redis+sentinel://127.0.0.1:26379/mymaster",
            "redbeat_key_prefix": "y:",
            "redbeat_redis_options": {"retry_period": 7},
        }
    )
    c = RedBeatConfig.from_app(app)
    assert (c.url, c.url_setting, c.key_prefix) == (
        "redis+sentinel://127.0.0.1:26379/mymaster",
        "redbeat_redis_url",
        "y:",
    )
    assert RedisSettings.of(c).retry_period == 7
