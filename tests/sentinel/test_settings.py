"""The Sentinel URL forms and options, read and checked at start-up (no server needed).

``redis+sentinel://`` and ``rediss+sentinel://`` carry everything in the URL; celery-redbeat's
``redis-sentinel://`` takes everything from ``redbeat_redis_options`` and must mean exactly what
it meant in celery-redbeat 2.4.2 (``redbeat/schedulers.py``, ``get_redis``): the spy test below
compares the arguments given to ``redis.sentinel.Sentinel`` and ``master_for`` with the ones
celery-redbeat gives them.
"""

from __future__ import annotations

import logging
import ssl
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.credentials import UsernamePasswordCredentialProvider
from redis.retry import Retry
from redis.sentinel import Sentinel

import redbeat_sentinel.backend
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.runtime import get_runtime
from redbeat_redis.connection import TEXT_REPLIES
from redbeat_redis.retry import RetryingConnection
from redbeat_redis.settings import RedisSettings
from redbeat_sentinel import SCHEMES, read_settings
from redbeat_sentinel.settings import SentinelSettings


@pytest.fixture
def apps() -> Iterator[list[Celery]]:
    made: list[Celery] = []
    yield made
    for app in made:
        for attribute in ("redbeat_redis", "redbeat_sentinel"):
            client = getattr(app, attribute, None)
            if client is not None and hasattr(client, "close"):
                client.close()
        app.close()


@pytest.fixture
def make_app(apps: list[Celery]) -> Any:
    def make(url: str, **conf: Any) -> Celery:
        app = Celery("sentinel-settings", set_as_current=False)
        app.conf.update({"broker_url": "memory://", "redbeat_redis_url": url, **conf})
        apps.append(app)
        return app

    return make


def start(app: Celery) -> Any:
    """What a starting beat does: read the settings and build the backend (no I/O yet)."""
    return get_runtime(app).backend


@pytest.fixture
def settings_of(make_app: Any) -> Any:
    def read(url: str, **conf: Any) -> SentinelSettings:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # broker_* fallbacks
            return read_settings(RedBeatConfig.from_app(make_app(url, **conf)))

    return read


# ----------------------------------------------------------------------------- redis+sentinel://


def test_url_names_sentinels_service_and_db(settings_of: Any) -> None:
    settings = settings_of("redis+sentinel://h1:26379,h2:26380,h3/mymaster?db=3")
    assert settings.sentinels == (("h1", 26379), ("h2", 26380), ("h3", 26379))
    assert settings.service_name == "mymaster"
    assert settings.db == 3
    assert settings.connection_kwargs == {**TEXT_REPLIES, "db": 3}
    assert settings.sentinel_kwargs is None
    assert not settings.tls
    assert settings.form == "url"


def test_url_db_defaults_to_zero_and_ipv6_hosts_are_bracketed(settings_of: Any) -> None:
    settings = settings_of("redis+sentinel://[::1]:26380,[fe80::2],10.0.0.3:1/svc%20a")
    assert settings.sentinels == (("::1", 26380), ("fe80::2", 26379), ("10.0.0.3", 1))
    assert settings.service_name == "svc a"
    assert settings.db == 0
    assert (
        settings.describe() == "redis+sentinel://[::1]:26380,[fe80::2]:26379,10.0.0.3:1/svc a?db=0"
    )


def test_url_credentials_authenticate_to_the_master(settings_of: Any) -> None:
    settings = settings_of("redis+sentinel://beat:s%40cret@h1,h2/mymaster")
    assert settings.connection_kwargs["username"] == "beat"
    assert settings.connection_kwargs["password"] == "s@cret"
    assert settings.sentinel_kwargs is None  # the sentinels get sentinel_kwargs, not these
    password_only = settings_of("redis+sentinel://:pw@h1/mymaster")
    assert password_only.connection_kwargs["password"] == "pw"
    assert "username" not in password_only.connection_kwargs


def test_url_query_options_are_parsed_like_redis_py(settings_of: Any) -> None:
    settings = settings_of(
        "redis+sentinel://h1/m?db=2&socket_timeout=1.5&health_check_interval=7&client_name=beat"
    )
    kwargs = settings.connection_kwargs
    assert kwargs["db"] == 2
    assert kwargs["socket_timeout"] == 1.5
    assert kwargs["health_check_interval"] == 7
    assert kwargs["client_name"] == "beat"


def test_explicit_options_go_to_the_master_sentinel_kwargs_to_the_sentinels(
    settings_of: Any,
) -> None:
    provider = UsernamePasswordCredentialProvider("beat", "s3cret")
    settings = settings_of(
        "redis+sentinel://h1/m?socket_timeout=2",
        redbeat_redis_options={
            "socket_timeout": 9,  # the URL wins, as with redis-py's from_url
            "socket_connect_timeout": 3,
            "credential_provider": provider,
            "sentinel_kwargs": {"password": "sentinel-pw", "socket_timeout": 1},
            "retry_period": 30,
        },
    )
    assert settings.connection_kwargs == {
        **TEXT_REPLIES,
        "socket_timeout": 2.0,
        "socket_connect_timeout": 3,
        "credential_provider": provider,
        "db": 0,
    }
    assert settings.sentinel_kwargs == {"password": "sentinel-pw", "socket_timeout": 1}


def test_inherited_broker_transport_options_are_left_to_the_broker(settings_of: Any) -> None:
    settings = settings_of(
        "redis+sentinel://h1/m",
        broker_transport_options={"visibility_timeout": 3600, "sentinel_kwargs": {"x": 1}},
    )
    assert settings.connection_kwargs == {**TEXT_REPLIES, "db": 0}
    assert settings.sentinel_kwargs is None


def test_sentinels_and_service_options_are_ignored_with_the_url_form(
    settings_of: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        settings = settings_of(
            "redis+sentinel://h1/from-url",
            redbeat_redis_options={"sentinels": [("other", 1)], "service_name": "other"},
        )
    assert settings.sentinels == (("h1", 26379),)
    assert settings.service_name == "from-url"
    assert "sentinels, service_name are ignored" in caplog.text


def test_rediss_sentinel_verifies_certificates_by_default(settings_of: Any) -> None:
    settings = settings_of("rediss+sentinel://h1/m")
    assert settings.tls
    assert settings.connection_kwargs["ssl"] is True
    assert settings.connection_kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert settings.sentinel_kwargs is None  # TLS to the sentinels only via sentinel_kwargs
    custom = settings_of(
        "rediss+sentinel://h1/m",
        redbeat_redis_use_ssl={"ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "none"},
    )
    assert custom.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert custom.connection_kwargs["ssl_cert_reqs"] == ssl.CERT_NONE  # Celery's string, read


def test_plain_url_form_ignores_use_ssl_like_redis_urls(settings_of: Any) -> None:
    settings = settings_of("redis+sentinel://h1/m", redbeat_redis_use_ssl={"ssl_ca_certs": "x"})
    assert not settings.tls
    assert "ssl" not in settings.connection_kwargs


def test_rediss_sentinel_builds_tls_connections(make_app: Any) -> None:
    app = make_app("rediss+sentinel://127.0.0.1:1/m")
    backend = get_runtime(app).backend
    pool = backend.client.connection_pool  # type: ignore[attr-defined]
    assert pool.connection_class is redis.sentinel.SentinelManagedSSLConnection
    connection = pool.connection_class(**pool.connection_kwargs)
    assert connection.cert_reqs == ssl.CERT_REQUIRED


# ----------------------------------------------------------------------------- redis-sentinel://


class SpySentinel(Sentinel):
    """Records what the backend gives ``Sentinel`` and ``master_for``."""

    calls: ClassVar[list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("Sentinel", args, kwargs))
        super().__init__(*args, **kwargs)

    def master_for(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(("master_for", args, kwargs))
        return super().master_for(*args, **kwargs)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    SpySentinel.calls = []
    monkeypatch.setattr(redbeat_sentinel.backend, "Sentinel", SpySentinel)
    return SpySentinel.calls


def test_celery_redbeat_form_passes_what_celery_redbeat_passes(
    make_app: Any, spy: list[Any]
) -> None:
    sentinels = [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    app = make_app(
        "redis-sentinel://ignored-host:1/9",
        redbeat_redis_options={
            "sentinels": sentinels,
            "service_name": "mymaster",
            "sentinel_kwargs": {"password": "sentinel-pw"},
            "password": "pw",
            "username": "beat",
            "db": 2,
            "socket_timeout": 0.5,
            "retry_period": 10,
        },
        redbeat_redis_use_ssl={"ssl_ca_certs": "/etc/ca.pem"},
    )
    backend = get_runtime(app).backend
    # celery-redbeat 2.4.2: Sentinel(options['sentinels'], socket_timeout=..., password=...,
    # db=options.get('db', 0), decode_responses=True, sentinel_kwargs=..., credential_provider=...,
    # ssl=True, **redis_use_ssl, username=...), then master_for(service_name, db=db).
    # One addition: sentinels are not retried one by one (see the next test).
    assert spy == [
        (
            "Sentinel",
            (sentinels,),
            {
                "sentinel_kwargs": {"password": "sentinel-pw", "retry": Retry(NoBackoff(), 0)},
                "socket_timeout": 0.5,
                "password": "pw",
                "db": 2,
                "decode_responses": True,
                "credential_provider": None,
                "ssl": True,
                "ssl_cert_reqs": ssl.CERT_REQUIRED,  # redis-py's default, made explicit
                "ssl_ca_certs": "/etc/ca.pem",
                "username": "beat",
            },
        ),
        ("master_for", ("mymaster",), {"db": 2}),
    ]
    assert app.redbeat_redis is backend.client  # type: ignore[attr-defined]
    assert isinstance(app.redbeat_sentinel, Sentinel)  # type: ignore[attr-defined]
    assert RedisSettings.of(backend.config).retry_period == 10
    assert backend.retry.retry_period == 10  # type: ignore[attr-defined]


def test_sentinels_are_not_retried_one_by_one(make_app: Any, spy: list[Any]) -> None:
    """Recent redis-py retries each sentinel with backoff before asking the next one (8.1: 10
    times, up to 1 s apart): one dead sentinel first in the list costs seconds. The Sentinel
    client asking the next sentinel, and the beat asking again on its next tick, are the retry.
    Without sentinel_kwargs, the sentinels get the socket_* options, as redis-py does."""
    no_retry = Retry(NoBackoff(), 0)
    start(make_app("redis+sentinel://h1/m?socket_connect_timeout=2"))
    assert spy[-2][2]["sentinel_kwargs"] == {"socket_connect_timeout": 2.0, "retry": no_retry}
    start(make_app("redis-sentinel://", redbeat_redis_options={"sentinels": [("h1", 1)]}))
    assert spy[-2][2]["sentinel_kwargs"] == {"socket_timeout": None, "retry": no_retry}
    mine = Retry(NoBackoff(), 2)
    options = {"sentinel_kwargs": {"retry": mine}}
    start(make_app("redis+sentinel://h1/m", redbeat_redis_options=options))
    assert spy[-2][2]["sentinel_kwargs"] == {"retry": mine}


def test_celery_redbeat_form_credential_provider(make_app: Any, spy: list[Any]) -> None:
    provider = UsernamePasswordCredentialProvider("beat", "s3cret")
    app = make_app(
        "redis-sentinel://",
        redbeat_redis_options={"sentinels": [("h1", 1)], "credential_provider": provider},
    )
    start(app)
    assert spy[0][2]["credential_provider"] is provider
    assert "username" not in spy[0][2]


def test_password_with_credential_provider_fails_at_start_up(make_app: Any) -> None:
    provider = UsernamePasswordCredentialProvider("beat", "s3cret")
    app = make_app(
        "redis-sentinel://",
        redbeat_redis_options={
            "sentinels": [("h1", 1)],
            "credential_provider": provider,
            "password": "pw",
        },
    )
    with pytest.raises(ConfigurationError, match="credential_provider"):
        start(app)


def test_celery_redbeat_form_defaults(settings_of: Any) -> None:
    settings = settings_of(
        "redis-sentinel://", redbeat_redis_options={"sentinels": [["h1", "26379"]]}
    )
    assert settings.sentinels == (("h1", 26379),)
    assert settings.service_name == "master"  # celery-redbeat's default
    assert settings.db == 0
    assert settings.connection_kwargs == {
        "socket_timeout": None,
        "password": None,
        "db": 0,
        "decode_responses": True,
        "credential_provider": None,
    }
    assert settings.sentinel_kwargs is None
    assert settings.form == "celery-redbeat"


def test_celery_redbeat_form_tls_only_with_a_dict(
    settings_of: Any, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"sentinels": [("h1", 26379)]}
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        plain = settings_of(
            "redis-sentinel://", redbeat_redis_options=options, redbeat_redis_use_ssl=True
        )
    assert not plain.tls
    assert "ssl" not in plain.connection_kwargs
    assert "does not turn TLS on for redis-sentinel://" in caplog.text
    tls = settings_of("redis-sentinel://", redbeat_redis_options=options, redbeat_redis_use_ssl={})
    assert tls.tls
    assert tls.connection_kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_celery_redbeat_form_reads_inherited_broker_transport_options(settings_of: Any) -> None:
    settings = settings_of(
        "redis-sentinel://",
        broker_transport_options={
            "sentinels": [("h1", 26379)],
            "service_name": "svc",
            "sentinel_kwargs": {"password": "x"},
        },
    )
    assert settings.sentinels == (("h1", 26379),)
    assert settings.service_name == "svc"
    assert settings.sentinel_kwargs == {"password": "x"}


def test_celery_redbeat_form_ignores_other_keys_and_says_so(
    settings_of: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        settings = settings_of(
            "redis-sentinel://",
            redbeat_redis_options={"sentinels": [("h1", 26379)], "health_check_interval": 5},
        )
    assert "health_check_interval" not in settings.connection_kwargs
    assert "health_check_interval are ignored by redis-sentinel://" in caplog.text


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("url", "options", "setting", "message"),
    [
        ("redis+sentinel:///mymaster", None, "redbeat_redis_url", "no sentinels given"),
        ("redis+sentinel://h1:26379", None, "redbeat_redis_url", "no service (master) name"),
        ("redis+sentinel://h1:26379/", None, "redbeat_redis_url", "no service (master) name"),
        ("rediss+sentinel://h1/m/0", None, "redbeat_redis_url", "give the database as ?db=N"),
        ("redis+sentinel://h1:port/m", None, "redbeat_redis_url", "'port' is not a number"),
        ("redis+sentinel://h1:70000/m", None, "redbeat_redis_url", "between 1 and 65535"),
        ("redis+sentinel://h1,,h2/m", None, "redbeat_redis_url", "an empty sentinel host"),
        ("redis+sentinel://::1:26379/m", None, "redbeat_redis_url", "[addr]:port"),
        ("redis+sentinel://h1/m?db=x", None, "redbeat_redis_url", "invalid value 'x' for 'db'"),
        ("redis+sentinel://h1/m?db=-1", None, "redbeat_redis_url", "database number >= 0"),
        ("redis-sentinel://h1:26379", None, "['sentinels']", "redis+sentinel://"),
        ("redis-sentinel://", {"sentinels": "h1:26379"}, "['sentinels']", "(host, port) pairs"),
        ("redis-sentinel://", {"sentinels": []}, "['sentinels']", "(host, port) pairs"),
        ("redis-sentinel://", {"sentinels": [("h1",)]}, "['sentinels']", "(host, port) pairs"),
        ("redis-sentinel://", {"sentinels": [("h1", "x")]}, "['sentinels']", "(host, port)"),
        (
            "redis-sentinel://",
            {"sentinels": [("h1", 1)], "service_name": ""},
            "['service_name']",
            "sentinel monitor <name>",
        ),
        (
            "redis-sentinel://",
            {"sentinels": [("h1", 1)], "db": "zero"},
            "['db']",
            "database number",
        ),
        (
            "redis-sentinel://",
            {"sentinels": [("h1", 1)], "sentinel_kwargs": "pw"},
            "['sentinel_kwargs']",
            "a dict of connection options",
        ),
        (
            "redis+sentinel://h1/m",
            {"cluster": True},
            "['cluster']",
            "exclude each other",
        ),
    ],
)
def test_bad_settings_fail_at_start_up_naming_the_setting(
    make_app: Any, url: str, options: dict[str, Any] | None, setting: str, message: str
) -> None:
    conf = {} if options is None else {"redbeat_redis_options": options}
    app = make_app(url, **conf)
    with pytest.raises(ConfigurationError) as caught:
        get_runtime(app)  # start-up: settings are read and the backend's adjust hook runs
    text = str(caught.value)
    assert setting in caught.value.setting
    assert message in text
    assert "redis+sentinel://" in text or "redis-sentinel://" in text or setting in text


def test_errors_never_show_the_password(make_app: Any) -> None:
    app = make_app("redis+sentinel://beat:s3cret@h1:26379")
    with pytest.raises(ConfigurationError) as caught:
        get_runtime(app)
    assert "s3cret" not in str(caught.value)
    assert "beat:**@h1:26379" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "options", "misspelled"),
    [
        ("redis+sentinel://h1/m", {"sokcet_timeout": 1}, "sokcet_timeout"),
        ("redis+sentinel://h1/m?sokcet_timeout=1", None, "sokcet_timeout"),
        ("redis+sentinel://h1/m", {"sentinel_kwargs": {"pasword": "x"}}, "pasword"),
        ("redis-sentinel://", {"sentinels": [("h1", 1)], "sentinel_kwargs": {"x": 1}}, "'x'"),
    ],
)
def test_misspelled_client_options_fail_at_start_up(
    make_app: Any, url: str, options: dict[str, Any] | None, misspelled: str
) -> None:
    conf = {} if options is None else {"redbeat_redis_options": options}
    app = make_app(url, **conf)
    with pytest.raises(ConfigurationError, match=misspelled) as caught:
        start(app)
    assert caught.value.setting == "redbeat_redis_url"


# ----------------------------------------------------------------------------- registration, app


def test_every_sentinel_scheme_is_registered(make_app: Any) -> None:
    registry = get_runtime(make_app("redis+sentinel://h1/m")).registry
    assert set(SCHEMES) == {"redis+sentinel", "rediss+sentinel", "redis-sentinel"}
    assert set(SCHEMES) <= set(registry.schemes)


def test_a_client_assigned_to_the_app_is_used(make_app: Any) -> None:
    app = make_app("redis+sentinel://127.0.0.1:1/m")
    mine = redis.Redis(port=1)
    app.redbeat_redis = RetryingConnection(5, mine)  # celery-redbeat's wrapper, unwrapped
    assert get_runtime(app).backend.client is mine  # type: ignore[attr-defined]


def test_a_sentinel_assigned_to_the_app_is_asked_for_the_master(make_app: Any) -> None:
    app = make_app(
        "redis-sentinel://",
        redbeat_redis_options={"sentinels": [("127.0.0.1", 1)], "service_name": "svc", "db": 4},
    )
    mine = Sentinel([("127.0.0.1", 2)])
    app.redbeat_sentinel = mine
    client = get_runtime(app).backend.client  # type: ignore[attr-defined]
    pool = client.connection_pool
    assert pool.sentinel_manager is mine
    assert pool.service_name == "svc"
    assert pool.connection_kwargs["db"] == 4
    assert app.redbeat_redis is client


def test_the_backend_sets_celery_redbeats_app_attributes(make_app: Any) -> None:
    app = make_app("redis+sentinel://127.0.0.1:1,127.0.0.1:2/svc?db=1")
    client = get_runtime(app).backend.client  # type: ignore[attr-defined]
    assert app.redbeat_redis is client
    sentinel = app.redbeat_sentinel
    assert isinstance(sentinel, Sentinel)
    ports = [s.connection_pool.connection_kwargs["port"] for s in sentinel.sentinels]
    assert ports == [1, 2]
    assert client.connection_pool.service_name == "svc"
