"""The Redis Cluster backend: ``RedisStore`` and ``RedisLock`` on a ``RedisCluster`` client.

Only two things differ from plain Redis: how the client is built (:mod:`.connection`) and the
key policy (:mod:`.keys`, applied before this factory runs). The store's Lua scripts (every
read and write it makes over several keys is one script) and the lock are redbeat_redis's,
unchanged: all their keys share one slot, so each script runs on the one primary that owns it.

While a primary fails over, redis-py's ``RedisCluster`` reports the outage not only as
``ConnectionError``/``TimeoutError`` but also as ``ClusterDownError`` (``CLUSTERDOWN``),
``TryAgainError``, ``SlotNotCoveredError`` or a ``RedisClusterException`` from refreshing its
slot map. :class:`ClusterRetry` reports all of them as the connection error the Redis store
already knows, so the scheduler sees ``StoreUnavailableError``, keeps its loop alive and
carries on once a replica has been promoted, without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import redis.exceptions

from redbeat_cluster.connection import APP_CLIENT_ATTRIBUTE, build_client, cluster_target
from redbeat_cluster.keys import adjust_config
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError, RedBeatError
from redbeat_core.urls import mask_url
from redbeat_redis import acl
from redbeat_redis.backend import RedisBackend
from redbeat_redis.connection import unwrap
from redbeat_redis.errors import RedisUnavailableError
from redbeat_redis.retry import RetryingConnection
from redbeat_redis.settings import REPLICA_ACKS_SETTING, RedisSettings

T = TypeVar("T")

#: Errors of a cluster in the middle of a failover or topology change: retrying is right.
CLUSTER_TRANSIENT_ERRORS: Final = (
    redis.exceptions.ClusterDownError,  # includes MasterDownError
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,  # slot map refresh failed, slot not covered
    redis.exceptions.ReadOnlyError,  # a node demoted under a stale slot map
)
#: Programming errors that must surface as they are, never be retried.
_NOT_TRANSIENT: Final = (
    redis.exceptions.CrossSlotTransactionError,
    redis.exceptions.InvalidPipelineStack,
)


class ClusterRetry(RetryingConnection):
    """redbeat_redis's retry policy, with cluster outage errors counted as connection errors
    (retried within ``retry_period``, then ``StoreUnavailableError`` for the scheduler)."""

    def call(self, operation: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return operation()
            except _NOT_TRANSIENT:
                raise
            except CLUSTER_TRANSIENT_ERRORS as exc:
                raise redis.exceptions.ConnectionError(
                    f"Redis Cluster unavailable ({type(exc).__name__}: {exc})"
                ) from exc

        return super().call(guarded)


@attrs.define
class ClusterBackend(RedisBackend):
    """:class:`RedisBackend` on a cluster client; only the banner line differs."""

    def describe(self) -> str:
        return f"redis cluster -> {mask_url(self.config.url)}"


def client_for(config: RedBeatConfig, app: Any) -> Any:
    """The app's cluster client: the one assigned to ``app.redbeat_redis``, or a new one
    (stored there, as celery-redbeat does, for code that reads it)."""
    assigned = getattr(app, APP_CLIENT_ATTRIBUTE, None) if app is not None else None
    if assigned is not None:
        return unwrap(assigned)
    try:
        client = build_client(config)
    except (redis.exceptions.RedisClusterException, redis.exceptions.RedisError) as exc:
        raise _start_up_error(config, exc) from exc
    if app is not None:
        setattr(app, APP_CLIENT_ATTRIBUTE, client)
    return client


def _start_up_error(config: RedBeatConfig, exc: Exception) -> RedBeatError:
    """What building the client failed on: an ACL refusal (redis-py reports a refused CLUSTER
    SLOTS as "Cluster mode is not enabled") names what to grant; anything else is an outage."""
    target = cluster_target(config)
    refused = acl.refusal(exc, None, user=target.kwargs.get("username") or "default")
    if refused is not None:
        return refused
    nodes = target.describe()
    if isinstance(exc, redis.exceptions.RedisClusterException):
        return RedisUnavailableError(f"Redis Cluster unreachable at {nodes}: {exc}")
    return RedisUnavailableError(f"Redis Cluster at {nodes}: {exc}")


def check_config(config: RedBeatConfig) -> RedBeatConfig:
    """The registry's ``adjust_config`` hook: refuse what a cluster cannot do, then apply the
    key policy (:func:`~redbeat_cluster.keys.adjust_config`). Pure: no I/O.

    ``redbeat_replica_acks`` is refused: redis-py's cluster client sends WAIT to every primary
    and adds up their answers, each on another connection than the commit's, so the count
    would say nothing about the commit.
    """
    replica_acks = RedisSettings.of(config).replica_acks
    if replica_acks:
        raise ConfigurationError(
            REPLICA_ACKS_SETTING,
            replica_acks,
            "0 on Redis Cluster (waiting for replicas needs WAIT on the commit's own "
            "connection, which redis-py's cluster client cannot send); remove the setting",
        )
    return adjust_config(config)


def create_backend(config: RedBeatConfig, app: Any) -> ClusterBackend:
    """The backend factory for ``redis+cluster://``, ``rediss+cluster://``, ``redis-cluster://``
    (and ``redis://``/``rediss://`` with ``redbeat_redis_options['cluster']``)."""
    return with_client(config, client_for(config, app))


def with_client(config: RedBeatConfig, client: Any) -> ClusterBackend:
    """The Redis store and lock on ``client``, with :class:`ClusterRetry` as their policy."""
    return ClusterBackend.with_client(
        config, client, retry=ClusterRetry(RedisSettings.of(config).retry_period, client)
    )
