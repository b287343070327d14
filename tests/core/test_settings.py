"""Settings declared by their owners: a plugin declares, RedBeat reads, checks and warns.

A plugin here is a module written to a temporary folder on ``sys.path`` and named in
``redbeat_plugins``, as a user would load one; only ``redbeat-core`` is needed.
"""

from __future__ import annotations

import logging
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.settings import (
    InvalidValue,
    Setting,
    SettingRegistry,
    Settings,
    integer,
    seconds,
)

URL = "teststore://h:1/0"

PLUGIN = """
from redbeat_core import hookimpl
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.settings import Setting, integer, seconds


def check(config):
    if config.settings["redbeat_acme_window"] > config.lock_timeout * 100:
        raise ConfigurationError("redbeat_acme_window", config.settings["redbeat_acme_window"],
                                 "at most 100 lock timeouts")


@hookimpl
def redbeat_register_settings(registry):
    registry.add(
        Setting("redbeat_acme_window", "float (s)", 60.0, "How long a window lasts.",
                parse=seconds()),
        Setting("redbeat_acme_limit", "int", 3, "How many runs a window allows.",
                parse=integer(minimum=1), attribute="acme_limit"),
        Setting("redbeat_acme_old_limit", alias_of="redbeat_acme_limit"),
        owner="acme-beat",
    )
    registry.check(check, owner="acme-beat")
"""


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., RedBeatConfig]:
    """``config(**conf)``: a config read with the ``acme`` plugin loaded."""
    (tmp_path / "acme_settings.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))

    def config(**conf: Any) -> RedBeatConfig:
        app = Celery("settings-test", set_as_current=False)
        app.conf.update(
            {"broker_url": "memory://", "redbeat_url": URL, "redbeat_plugins": ["acme_settings"]}
        )
        app.conf.update(conf)
        return RedBeatConfig.from_app(app)

    return config


def test_a_plugin_reads_its_declared_settings_checked(acme: Callable[..., RedBeatConfig]) -> None:
    defaults = acme()
    assert defaults.settings["redbeat_acme_window"] == 60.0
    assert defaults.settings["redbeat_acme_limit"] == 3
    assert not defaults.settings.is_set("redbeat_acme_limit")
    given = acme(REDBEAT_ACME_WINDOW=5, redbeat_acme_limit=7)
    assert given.settings["redbeat_acme_window"] == 5.0
    assert given.settings.is_set("redbeat_acme_limit")


def test_an_alias_is_read_when_the_name_is_not_set(acme: Callable[..., RedBeatConfig]) -> None:
    old = acme(redbeat_acme_old_limit=4)
    assert (old.settings["redbeat_acme_limit"], old.settings.source("redbeat_acme_limit")) == (
        4,
        "redbeat_acme_old_limit",
    )
    both = acme(redbeat_acme_old_limit=4, redbeat_acme_limit=9)
    assert both.settings["redbeat_acme_limit"] == 9  # the name wins over its alias


def test_a_declared_attribute_reads_as_celery_redbeat_code_expects(
    acme: Callable[..., RedBeatConfig],
) -> None:
    assert acme(redbeat_acme_limit=7).acme_limit == 7  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no_such_thing"):
        acme().no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def test_a_plugins_bad_value_stops_start_up_naming_setting_and_plugin(
    acme: Callable[..., RedBeatConfig],
) -> None:
    with pytest.raises(ConfigurationError) as info:
        acme(redbeat_acme_limit=0)
    message = str(info.value)
    assert message.startswith("invalid setting redbeat_acme_limit=0: an integer >= 1")
    assert "the plugin acme-beat" in message


def test_a_bad_value_under_an_alias_names_the_alias(acme: Callable[..., RedBeatConfig]) -> None:
    with pytest.raises(ConfigurationError, match="invalid setting redbeat_acme_old_limit=-1"):
        acme(redbeat_acme_old_limit=-1)


def test_a_plugins_check_across_settings_names_the_plugin(
    acme: Callable[..., RedBeatConfig],
) -> None:
    with pytest.raises(ConfigurationError, match=r"at most 100 lock timeouts.*acme-beat"):
        acme(redbeat_acme_window=5000)


def test_an_undeclared_setting_is_warned_about_with_the_closest_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = SettingRegistry()
    registry.add(
        Setting("redbeat_lock_timeout", parse=seconds()),
        Setting("redbeat_url"),
        owner="redbeat-core",
    )
    conf = {"redbeat_lock_timout": 30, "REDBEAT_URL": URL, "broker_url": "x", "redbeat_zzz": 1}
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        warned = registry.warn_undeclared(conf)
    assert warned == ["redbeat_lock_timout", "redbeat_zzz"]
    assert "redbeat_lock_timout is not declared" in caplog.text
    assert "did you mean redbeat_lock_timeout?" in caplog.text
    assert "redbeat_zzz is not declared by RedBeat or by any installed plugin, so it is " in (
        caplog.text
    )


def test_a_runtime_warns_once_about_a_misspelled_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from redbeat_core.runtime import get_runtime

    app = Celery("misspelled", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url=URL, redbeat_lock_timout=30)
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        runtime = get_runtime(app)
        get_runtime(app)
    assert runtime.config.lock_timeout == 10  # the misspelled value is not used...
    hits = [r for r in caplog.records if "redbeat_lock_timout" in r.getMessage()]
    assert len(hits) == 1  # ...and said so, once
    assert "did you mean redbeat_lock_timeout?" in hits[0].getMessage()


def test_two_owners_cannot_declare_one_name() -> None:
    registry = SettingRegistry()
    registry.add(Setting("redbeat_x"), owner="one")
    registry.add(Setting("redbeat_x"), owner="one")  # the same owner again: fine
    with pytest.raises(ValueError, match="declared twice: by one and two"):
        registry.add(Setting("redbeat_x"), owner="two")


def test_names_are_declared_in_lower_case() -> None:
    with pytest.raises(ValueError, match="lower case"):
        SettingRegistry().add(Setting("REDBEAT_X"), owner="one")


def test_an_alias_of_nothing_fails_when_read() -> None:
    registry = SettingRegistry()
    registry.add(Setting("redbeat_y", alias_of="redbeat_missing"), owner="one")
    with pytest.raises(ValueError, match="alias of 'redbeat_missing', which nobody declared"):
        registry.read({})


def test_a_fallback_is_parsed_and_may_warn() -> None:
    registry = SettingRegistry()
    registry.add(
        Setting(
            "redbeat_size",
            default=1,
            parse=integer(minimum=1),
            fallback="broker_size",
            fallback_warning="falls back; set {names}",
        ),
        owner="one",
    )
    values = registry.read({"broker_size": 5})
    assert (values["redbeat_size"], values.source("redbeat_size")) == (5, "broker_size")
    assert not values.is_set("redbeat_size")
    # Warned once the runtime knows the value is used (a backend may leave it unused).
    with pytest.warns(DeprecationWarning, match="falls back; set redbeat_size"):
        values.warn_fallbacks()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values.warn_fallbacks(unused=["redbeat_size"])
    with pytest.raises(ConfigurationError) as info:
        registry.read({"broker_size": 0})
    # The operator set broker_size, not redbeat_size: the error names what they wrote.
    assert info.value.setting == "broker_size"
    assert str(info.value) == (
        "invalid setting broker_size=0: an integer >= 1 (read as redbeat_size, unset) "
        "(a setting of the plugin one)"
    )


def test_a_key_inside_a_dict_setting_is_named_in_its_error() -> None:
    def parse(value: Any) -> Any:
        if value.get("period", 0) < 0:
            raise InvalidValue("a period >= 0", key="period", value=value["period"])
        return value

    registry = SettingRegistry()
    registry.add(Setting("redbeat_options", default={}, parse=parse), owner="one")
    with pytest.raises(ConfigurationError, match=r"invalid setting redbeat_options\['period'\]=-5"):
        registry.read({"redbeat_options": {"period": -5}})


def test_settings_of_hand_made_values() -> None:
    values = Settings.of(redbeat_a=1)
    assert (values["redbeat_a"], values.is_set("redbeat_a"), values.get("redbeat_b", 2)) == (
        1,
        True,
        2,
    )
