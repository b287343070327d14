"""The core's settings: celery-redbeat's names, defaults and fallbacks, and start-up checks.

Only ``redbeat-core`` is needed (the ``tests(core)`` session runs this without any backend):
the storage URL is ``redbeat_url``, whose scheme no backend has to handle for the config alone.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from celery import Celery

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.runtime import get_runtime

URL = "teststore://h:1/2"


def config(**conf: Any) -> RedBeatConfig:
    app = Celery("config-test", set_as_current=False)
    app.conf.update({"broker_url": "memory://", **conf})
    return RedBeatConfig.from_app(app)


def test_celery_redbeat_defaults_and_key_names() -> None:
    c = config(redbeat_url=URL)
    assert (c.url, c.url_setting) == (URL, "redbeat_url")
    assert c.key_prefix == "redbeat:"
    assert c.schedule_key == "redbeat::schedule"  # two colons, as celery-redbeat writes it
    assert c.statics_key == "redbeat::statics"
    assert c.lock_key == "redbeat::lock"
    assert c.delivery == "at-most-once"
    assert c.settings["redbeat_lock_timeout"] == 10


def test_upper_case_settings_are_read() -> None:
    c = config(REDBEAT_URL="teststore://up:1/0", REDBEAT_KEY_PREFIX="up:")
    assert (c.url, c.key_prefix, c.lock_key) == ("teststore://up:1/0", "up:", "up::lock")


def test_a_setting_set_to_none_takes_its_default() -> None:
    c = config(redbeat_url=URL, redbeat_key_prefix=None, redbeat_batch_size=None)
    assert (c.key_prefix, c.batch_size) == ("redbeat:", 1000)


def test_a_lock_key_without_the_prefix_gets_it() -> None:
    assert config(redbeat_url=URL, redbeat_lock_key="mylock").lock_key == "redbeat:mylock"


def test_lock_key_none_disables_locking() -> None:
    assert config(redbeat_url=URL, redbeat_lock_key=None).lock_key is None


def test_broker_url_fallback_warns() -> None:
    app = Celery("fallback", set_as_current=False)
    app.conf.broker_url = "teststore://broker:6379/0"
    with pytest.warns(DeprecationWarning, match="redbeat_url"):
        c = RedBeatConfig.from_app(app)
    assert (c.url, c.url_setting) == ("teststore://broker:6379/0", "broker_url")


def test_no_url_at_all_names_the_setting() -> None:
    app = Celery("nothing", set_as_current=False)
    app.conf.broker_url = None
    assert RedBeatConfig.from_app(app).url == ""  # a backend may serve it without one
    with pytest.raises(ConfigurationError, match="set redbeat_url"):
        get_runtime(app)  # none does: refused when the backend is chosen


def test_timing_defaults_prepare_ahead_and_freeze() -> None:
    c = config(redbeat_url=URL)
    assert c.prepare_ahead == 0.05
    assert c.gc_freeze is True
    off = config(redbeat_url=URL, redbeat_prepare_ahead=0, redbeat_gc_freeze=False)
    assert (off.prepare_ahead, off.gc_freeze) == (0.0, False)


def test_lock_timing_defaults_give_fast_failover() -> None:
    c = config(redbeat_url=URL)
    assert c.lock_timeout == 10
    assert c.lock_renew_interval == pytest.approx(10 / 3)
    assert c.lock_poll_interval == 1


def test_constructor_overrides_win() -> None:
    app = Celery("overrides", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url=URL, redbeat_lock_timeout=30)
    c = RedBeatConfig.from_app(app, lock_timeout=60, lock_key="other", max_interval=7)
    assert (c.lock_timeout, c.lock_key, c.max_interval) == (60, "redbeat:other", 7)
    with pytest.raises(ConfigurationError, match="redbeat_lock_timeout"):
        RedBeatConfig.from_app(app, lock_timeout="soon")


@pytest.mark.parametrize(
    ("conf", "setting"),
    [
        ({"redbeat_url": 42}, "redbeat_url"),
        ({"redbeat_url": "no scheme"}, "redbeat_url"),
        ({"redbeat_lock_timeout": 0}, "redbeat_lock_timeout"),
        ({"redbeat_lock_timeout": "ten"}, "redbeat_lock_timeout"),
        ({"redbeat_lock_timeout": 5, "redbeat_lock_renew_interval": 5}, "redbeat_lock_timeout"),
        ({"redbeat_lock_poll_interval": -1}, "redbeat_lock_poll_interval"),
        ({"redbeat_lock_key": ""}, "redbeat_lock_key"),
        ({"redbeat_batch_size": 0}, "redbeat_batch_size"),
        ({"redbeat_prepare_ahead": -0.01}, "redbeat_prepare_ahead"),
        ({"redbeat_prepare_ahead": 2}, "redbeat_prepare_ahead"),
        ({"redbeat_prepare_ahead": "soon"}, "redbeat_prepare_ahead"),
        ({"redbeat_prepare_ahead": float("nan")}, "redbeat_prepare_ahead"),
        ({"redbeat_gc_freeze": "yes"}, "redbeat_gc_freeze"),
        ({"redbeat_delivery": "sometimes"}, "redbeat_delivery"),
        ({"redbeat_unknown_task": "drop"}, "redbeat_unknown_task"),
        ({"redbeat_key_prefix": ""}, "redbeat_key_prefix"),
        ({"redbeat_plugins": 42}, "redbeat_plugins"),
        ({"beat_max_loop_interval": -1}, "beat_max_loop_interval"),
    ],
)
def test_invalid_values_name_the_setting(conf: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        config(**{"redbeat_url": URL, **conf})
    assert info.value.setting == setting
    assert f"invalid setting {setting}=" in str(info.value)


def test_an_upper_case_setting_is_named_as_written_in_its_error() -> None:
    with pytest.raises(ConfigurationError, match="invalid setting redbeat_batch_size=0"):
        config(redbeat_url=URL, REDBEAT_BATCH_SIZE=0)


def test_reading_the_config_warns_about_nothing_when_all_is_well() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config(redbeat_url=URL)


def test_settings_added_with_add_defaults_are_read() -> None:
    """celery-redbeat reads settings added by ``app.conf.add_defaults`` (``conf.first`` sees
    them), though iterating the configuration does not list them: so do we."""
    app = Celery("defaults", set_as_current=False)
    app.conf.broker_url = "memory://"
    app.conf.add_defaults(
        {"redbeat_key_prefix": "y:", "redbeat_url": URL, "REDBEAT_LOCK_TIMEOUT": 30}
    )
    c = RedBeatConfig.from_app(app)
    assert (c.key_prefix, c.url, c.lock_timeout, c.lock_key) == ("y:", URL, 30, "y::lock")
