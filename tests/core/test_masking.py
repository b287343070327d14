"""Secrets never shown: every credential form a storage URL or an option dict can carry is
masked by ``mask_url`` / ``redacted``, and the core's errors and reprs use them.

The URLs are only text here: nothing connects to them (names under ``.invalid`` never resolve).
"""

from __future__ import annotations

from typing import Any

import pytest

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError, UnknownBackendError
from redbeat_core.masking import is_secret_name, mask_url, redacted, userinfo_spills
from redbeat_core.settings import Settings
from redbeat_core.testing.apps import celery_apps

SECRET = "s3cr%2Ft"  # percent-encoded: "s3cr/t"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # userinfo: user and password, password only; the user name is kept
        ("db://beat:hunter2@h.invalid:1/0", "db://beat:**@h.invalid:1/0"),
        ("db://:hunter2@h.invalid:1/0", "db://:**@h.invalid:1/0"),
        (f"db://beat:{SECRET}@h.invalid/0", "db://beat:**@h.invalid/0"),
        ("db://beat:p@ss@h.invalid/0", "db://beat:**@h.invalid/0"),  # an unencoded '@'
        ("db://beat@h.invalid/0", "db://beat@h.invalid/0"),  # a user name alone is kept
        # secrets in the query, whatever their case or encoding; other parameters are kept
        ("db://h.invalid/0?password=hunter2", "db://h.invalid/0?password=**"),
        (
            "db://h.invalid/0?username=beat&password=hunter2&db=1",
            "db://h.invalid/0?username=beat&password=**&db=1",
        ),
        ("db://h.invalid/0?pass%77ord=hunter2", "db://h.invalid/0?pass%77ord=**"),
        ("db://h.invalid/0?PASSWORD=hunter2", "db://h.invalid/0?PASSWORD=**"),
        ("db://h.invalid/0?sentinel_password=hunter2", "db://h.invalid/0?sentinel_password=**"),
        ("db://h.invalid/0?ssl_password=hunter2", "db://h.invalid/0?ssl_password=**"),
        ("db://h.invalid/0?token=hunter2&api_key=x", "db://h.invalid/0?token=**&api_key=**"),
        ("db://h.invalid/0?access_token=hunter2", "db://h.invalid/0?access_token=**"),
        (
            "db://h.invalid/0?ssl_keyfile=/k.pem&lock_key=k",
            "db://h.invalid/0?ssl_keyfile=/k.pem&lock_key=k",
        ),
        # several hosts, sockets, IPv6
        ("db+replicas://:hunter2@h1:1,h2:2/name", "db+replicas://:**@h1:1,h2:2/name"),
        (
            "db+shards://u:hunter2@[::1]:1,h2/0?password=x",
            "db+shards://u:**@[::1]:1,h2/0?password=**",
        ),
        ("unix://:hunter2@/run/db.sock?db=1", "unix://:**@/run/db.sock?db=1"),
        ("unix:///run/db.sock?password=hunter2", "unix:///run/db.sock?password=**"),
        ("unix:///run/a@b/db.sock", "unix:///run/a@b/db.sock"),  # an '@' in a path is kept
        ("db://u:hunter2@[::1/0", "db://u:**@[::1/0"),  # does not parse: still masked
        # a password with an unencoded '/', '?' or '#' ends the host part early
        ("db://:hunt/er2@h.invalid:1/0", "db://**@h.invalid:1/0"),
        ("db://beat:12/34@h.invalid:1/0", "db://**@h.invalid:1/0"),
        ("db://beat:hun?ter2@h.invalid/0", "db://**@h.invalid/0"),
        ("db://beat:12?34@h.invalid/0", "db://**@h.invalid/0"),
        ("db://beat:12#34@h.invalid/0", "db://**@h.invalid/0"),
        ("db://:hunt/er2@h.invalid/0?password=x", "db://**@h.invalid/0?password=**"),
        # nothing to mask: unchanged, to the character
        ("db://h.invalid:1/0?client_name=a@b", "db://h.invalid:1/0?client_name=a@b"),
        ("db:///relative.db", "db:///relative.db"),
        ("not a url", "not a url"),
    ],
)
def test_every_credential_form_is_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    for secret in ("hunter2", "s3cr", "hunt", "34", "ter2"):
        if secret not in shown:
            assert secret not in mask_url(url)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("ssl_password", True),
        ("passwd", True),
        ("credential_provider", True),
        ("token", True),
        ("auth", True),
        ("api_key", True),
        ("key", True),
        ("username", False),
        ("ssl_keyfile", False),
        ("redbeat_lock_key", False),
        ("redbeat_key_prefix", False),
        ("socket_timeout", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_option_dicts_are_redacted_recursively() -> None:
    provider = object()
    options = {
        "password": "hunter2",
        "username": "beat",
        "credential_provider": provider,
        "sentinel_kwargs": {"password": "hunter3", "socket_timeout": 1},
        "startup_nodes": [{"host": "h.invalid", "password": "hunter4"}],
        "url": "db://:hunter5@h.invalid",
        "ssl_password": None,
    }
    shown = redacted(options)
    assert shown == {
        "password": "**",
        "username": "beat",
        "credential_provider": "**",
        "sentinel_kwargs": {"password": "**", "socket_timeout": 1},
        "startup_nodes": [{"host": "h.invalid", "password": "**"}],
        "url": "db://:**@h.invalid",
        "ssl_password": None,  # unset stays visible
    }
    assert options["password"] == "hunter2", "the original is untouched"


def test_configuration_errors_mask_what_they_show() -> None:
    url_error = ConfigurationError("redbeat_url", "db://:hunter2@h.invalid/0?token=t0k", "x")
    options_error = ConfigurationError(
        "redbeat_x_options", {"password": "hunter2", "sentinel_kwargs": {"token": "t0k"}}, "x"
    )
    key_error = ConfigurationError("redbeat_x_options['password']", "hunter2", "a string")
    unknown = UnknownBackendError(
        "redbeat_url", "nope://:hunter2@h.invalid?password=t0k", "nope", [], "Install it."
    )
    for error in (url_error, options_error, key_error, unknown):
        text = f"{error} {error!r} {error.value!r} {error.args!r}"
        assert "hunter2" not in text
        assert "t0k" not in text
        assert "**" in text


def test_config_and_settings_reprs_mask_secrets() -> None:
    url = "db://beat:hunter2@h.invalid/0?password=t0k"
    settings = Settings.of(redbeat_url=url, redbeat_x_options={"password": "hunter3"})
    config = RedBeatConfig(url=url, settings=settings)
    text = repr(config) + str(config) + repr(settings)
    assert "hunter2" not in text
    assert "hunter3" not in text
    assert "t0k" not in text
    assert "db://beat:**@h.invalid/0?password=**" in text
    assert config.url == url, "the value itself is intact"


@pytest.mark.parametrize(
    "url", ["db://:hunt/er2@h.invalid:1/0", "db://beat:12?34@h.invalid/0", "db://u:1#2@h.invalid"]
)
def test_a_password_that_breaks_the_url_is_refused_without_showing_it(url: str) -> None:
    assert userinfo_spills(url)
    with celery_apps(url) as make_app:
        app: Any = make_app()
        with pytest.raises(ConfigurationError, match="percent-encoded") as caught:
            RedBeatConfig.from_app(app)
    for secret in ("hunt", "er2", "12", "34"):
        assert secret not in str(caught.value).replace("h.invalid", "")
    assert not userinfo_spills("db://:hunter2@h.invalid/0?client_name=a@b")
    assert not userinfo_spills("unix:///run/a@b/db.sock")
