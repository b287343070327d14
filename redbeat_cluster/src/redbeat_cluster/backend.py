"""The Redis Cluster backend: ``RedisStore`` and ``RedisLock`` on a ``RedisCluster`` client.

Only two things differ from plain Redis: how the client is built (:mod:`.connection`) and the
key policy (:mod:`.keys`, applied before this factory runs). The store's Lua scripts and
MULTI/EXEC writes, and the lock, are redbeat_redis's, unchanged: all their keys share one slot,
so each script and each transaction runs on the one primary that owns it. Only the store's
``close()`` differs: it drops connections without ``RedisCluster.close()``, which would leave
the client unusable.

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
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import StoreUnavailableError
from redbeat_core.urls import mask_url
from redbeat_redis.backend import RedisBackend
from redbeat_redis.retry import RetryingConnection
from redbeat_redis.store import RedisStore

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


def unwrap(client: Any) -> Any:
    """The real client behind celery-redbeat's ``RetryingConnection`` proxy, if any."""
    return getattr(client, "wrapped_connection", None) or client


def disconnect(client: Any) -> None:
    """Drop the pooled connections of every node, keeping the slot map: the client reconnects
    on its next command. ``RedisCluster.close()`` would also forget its nodes and slot map,
    after which the client fails (``'NoneType' object has no attribute 'redis_connection'``)
    instead of reconnecting, and a client the user assigned would be broken for them too."""
    get_nodes = getattr(client, "get_nodes", None)
    if get_nodes is None:
        client.close()
        return
    for node in get_nodes():
        connection = node.redis_connection
        if connection is not None:
            connection.connection_pool.disconnect()


@attrs.define
class ClusterStore(RedisStore):
    """:class:`RedisStore` whose ``close()`` releases connections and stays usable, as the
    ``ScheduleStore`` protocol asks (the scheduler closes the store when it stops)."""

    def close(self) -> None:
        disconnect(self.client)


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
    except redis.exceptions.RedisClusterException as exc:
        nodes = cluster_target(config).describe()
        raise StoreUnavailableError(f"Redis Cluster unreachable at {nodes}: {exc}") from exc
    except redis.exceptions.RedisError as exc:
        nodes = cluster_target(config).describe()
        raise StoreUnavailableError(f"Redis Cluster at {nodes}: {exc}") from exc
    if app is not None:
        setattr(app, APP_CLIENT_ATTRIBUTE, client)
    return client


def create_backend(config: RedBeatConfig, app: Any) -> ClusterBackend:
    """The backend factory for ``redis+cluster://``, ``rediss+cluster://``, ``redis-cluster://``
    (and ``redis://``/``rediss://`` with ``redbeat_redis_options['cluster']``)."""
    return with_client(config, client_for(config, app))


def with_client(config: RedBeatConfig, client: Any) -> ClusterBackend:
    """The Redis store and lock on ``client``, with :class:`ClusterRetry` as their policy."""
    plain = RedisBackend.with_client(config, client)
    retry = ClusterRetry(config.retry_period, client)
    store = ClusterStore(client=plain.store.client, keys=plain.store.keys, retry=retry)
    return ClusterBackend(config=plain.config, client=plain.client, retry=retry, store=store)
