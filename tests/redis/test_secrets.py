"""No secret given to the Redis backend is ever shown: beats start, tick, fail and stop with
passwords in every form a URL or ``redbeat_redis_options`` can carry them, against a real
server that requires them, and nothing RedBeat logs, raises, prints or reprs contains them.

The server's default user and two ACL users require the passwords, so every form really
authenticates (a wrong one fails); a real ``celery beat`` process shows its banner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from celery import Celery
from redbeat_test_support import exposure, run_a_beat, run_celery_beat
from redis.credentials import UsernamePasswordCredentialProvider

from redbeat import RedBeatScheduler
from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError
from redbeat_core.testing.apps import celery_apps
from redbeat_redis.testing.servers import ServerProcess, free_port

SECRET = "Zx9-default-secret"
#: An ACL user's password with every character a URL gives a meaning to, percent-encoded in URLs.
SPECIAL = "Zx9/sp?ec#ial@pw%"
WRONG = "Zx9-wrong-secret"
SHOWN_NEVER = (SECRET, SPECIAL, quote(SPECIAL, safe=""), "Zx9")


@pytest.fixture
def server(redbeat_server_factory: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    """A private server on TCP and a unix socket whose users all need a password."""
    server = redbeat_server_factory(
        extra_args=("--unixsocket", str(tmp_path / "db.sock"), "--unixsocketperm", "700")
    )
    server.call("ACL", "SETUSER", "beat", "on", f">{SECRET}", "~*", "+@all")
    server.call("ACL", "SETUSER", "special", "on", f">{SPECIAL}", "~*", "+@all")
    server.call("ACL", "SETUSER", "default", "resetpass", f">{SECRET}")  # = requirepass
    return server


@pytest.fixture
def make_app(server: ServerProcess) -> Iterator[Callable[..., Celery]]:
    with celery_apps(server.url, name="secrets") as make:
        yield make


def url_forms(server: ServerProcess, socket: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every way to give the Redis backend a password: (URL, redbeat_redis_options)."""
    at = f"127.0.0.1:{server.port}"
    special = quote(SPECIAL, safe="")
    provider = UsernamePasswordCredentialProvider("beat", SECRET)
    return {
        "query password": (f"redis://{at}/0?password={SECRET}", {}),
        "query user and password": (f"redis://{at}/0?username=beat&password={SECRET}", {}),
        "password only": (f"redis://:{SECRET}@{at}/0", {}),
        "user and password": (f"redis://beat:{SECRET}@{at}/0", {}),
        "percent-encoded": (f"redis://special:{special}@{at}/0", {}),
        "percent-encoded query": (f"redis://{at}/0?username=special&password={special}", {}),
        "options": (f"redis://{at}/0", {"username": "beat", "password": SECRET}),
        "credential provider": (f"redis://{at}/0", {"credential_provider": provider}),
        "unix socket": (f"unix://:{SECRET}@{socket}?db=0", {}),
        "unix socket query": (f"unix://{socket}?db=0&password={SECRET}", {}),
    }


def test_no_password_form_is_ever_shown(
    server: ServerProcess, make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    forms = url_forms(server, tmp_path / "db.sock")
    with exposure() as shown:
        for url, options in forms.values():
            conf = {"redbeat_redis_options": options} if options else {}
            run_a_beat(make_app(redbeat_redis_url=url, **conf), shown)
    shown.assert_hidden(*SHOWN_NEVER)
    banner = shown.text
    assert f"redis -> redis://127.0.0.1:{server.port}/0?password=**" in banner
    assert f"redis -> redis://beat:**@127.0.0.1:{server.port}/0" in banner
    assert f"redis -> unix://:**@{tmp_path / 'db.sock'}?db=0" in banner


def test_no_password_is_shown_when_things_go_wrong(
    server: ServerProcess, make_app: Callable[..., Celery]
) -> None:
    at = f"127.0.0.1:{server.port}"
    dead = f"127.0.0.1:{free_port()}"
    failures: list[tuple[str, dict[str, Any], type[Exception]]] = [
        (f"redis://{at}/0?password={WRONG}", {}, StoreUnavailableError),
        (f"redis://beat:{WRONG}@{at}/0", {}, StoreUnavailableError),
        (f"redis://{at}/0", {"password": WRONG}, StoreUnavailableError),
        (f"redis://{dead}/0?password={SECRET}", {}, StoreUnavailableError),
        (f"redis://:{SECRET}@{dead}/0", {"socket_connect_timeout": 1}, StoreUnavailableError),
        (f"redis://:{SECRET}@{at}/0?sokcet_timeout=1", {}, ConfigurationError),
        (f"redis://{at}/0", {"password": SECRET, "sokcet_timeout": 1}, ConfigurationError),
        (f"redis+nope://:{SECRET}@{at}/0?password={SECRET}", {}, ConfigurationError),
        (f"redis://:{SECRET}@{at}/0", {"retry_period": "soon", "password": SECRET}, ValueError),
        (f"redis://:Zx9/{SECRET}@{at}/0", {}, ConfigurationError),  # an unencoded '/'
    ]
    with exposure() as shown:
        for url, options, error in failures:
            conf = {"redbeat_redis_options": options} if options else {}
            app = make_app(redbeat_redis_url=url, **conf)
            with pytest.raises(error) as caught:
                RedBeatScheduler(app=app)
            shown.add(caught.value)
        # A running beat whose server goes away logs the outage and keeps ticking.
        app = make_app(redbeat_redis_url=f"redis://{at}/0?password={SECRET}")
        scheduler = RedBeatScheduler(app=app)
        try:
            scheduler.tick()
            server.kill()
            scheduler.tick()
            shown.add(scheduler.info)
        finally:
            scheduler.close()
    shown.assert_hidden(*SHOWN_NEVER, WRONG)
    assert "storage unreachable" in shown.text
    assert "invalid username-password pair" in shown.text


def test_a_celery_beat_banner_and_logs_never_show_the_password(
    server: ServerProcess, tmp_path: Path
) -> None:
    """The report of #16: ``?password=`` was printed in ``celery beat``'s banner."""
    url = f"redis://127.0.0.1:{server.port}/0?password={SECRET}"
    app_source = (
        "from celery import Celery\n"
        "app = Celery('beat_app')\n"
        "app.conf.update(\n"
        "    broker_url='memory://',\n"
        f"    redbeat_redis_url={url!r},\n"
        f"    redbeat_redis_options={{'password': {SECRET!r}, 'socket_timeout': 5}},\n"
        "    beat_schedule={'every': {'task': 'tasks.every', 'schedule': 1.0}},\n"
        ")\n"
    )
    output = run_celery_beat(tmp_path, app_source, until="Sending due task every")
    assert "Sending due task every" in output, output[-3000:]
    assert f"redis -> redis://127.0.0.1:{server.port}/0?password=**" in output
    for secret in SHOWN_NEVER:
        assert secret not in output
    # The beat authenticated with the secret: its lock holder is in the server.
    with redis.Redis(port=server.port, password=SECRET) as client:
        assert client.exists("redbeat::statics")
