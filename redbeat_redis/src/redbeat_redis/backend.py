"""The Redis backend: what the ``redis://``, ``rediss://`` and ``unix://`` schemes build."""

from __future__ import annotations

from typing import Any, Protocol, Self

import attrs

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.typing import BackendFactory, Lock
from redbeat_core.urls import mask_url
from redbeat_redis.connection import APP_CLIENT_ATTRIBUTE, client_address, client_for
from redbeat_redis.lock import RedisLock
from redbeat_redis.retry import RetryingConnection
from redbeat_redis.settings import REPLICA_ACK_TIMEOUT_SETTING, RedisSettings
from redbeat_redis.store import RedisKeys, RedisStore


class Connector(Protocol):
    """Builds the Redis client from the settings: the connection strategy. The Redis, Sentinel
    and Cluster backends differ only here (and Cluster in its key policy). No I/O is
    required: clients connect lazily."""

    def __call__(self, config: RedBeatConfig, app: Any) -> Any: ...


@attrs.define
class RedisBackend:
    """A :class:`~redbeat_core.typing.Backend`: a store and a lock sharing one client."""

    config: RedBeatConfig
    client: Any
    retry: RetryingConnection
    store: RedisStore

    @classmethod
    def create(cls, config: RedBeatConfig, app: Any) -> RedisBackend:
        """The backend for ``redis://``, ``rediss://`` and ``unix://`` URLs."""
        return cls.with_client(config, client_for(config, app))

    @classmethod
    def factory(cls, connector: Connector) -> BackendFactory:
        """A backend factory for the registry: the Redis store and lock on the client that
        ``connector`` builds (how Sentinel and Cluster reuse everything but the connection)."""

        def create(config: RedBeatConfig, app: Any) -> RedisBackend:
            return cls.with_client(config, connector(config, app))

        return create

    @classmethod
    def with_client(
        cls, config: RedBeatConfig, client: Any, *, retry: RetryingConnection | None = None
    ) -> Self:
        """The Redis store and lock on any redis-py-compatible client: the Sentinel and Cluster
        backends differ from plain Redis only in how they build that client (and, for Cluster,
        which errors the retry policy counts as an outage)."""
        redis = RedisSettings.of(config)
        retry = retry or RetryingConnection(redis.retry_period, client)
        check_replica_ack_timeout(redis, client)
        store = RedisStore(
            client=client,
            keys=RedisKeys.from_config(config),
            retry=retry,
            replica_acks=redis.replica_acks,
            replica_ack_timeout=redis.replica_ack_timeout,
        )
        return cls(config=config, client=client, retry=retry, store=store)

    def make_lock(self, config: RedBeatConfig) -> Lock:
        assert config.lock_key is not None  # the default hook gives a NullLock otherwise
        return RedisLock(
            client=self.client,
            key=config.lock_key,
            ttl=config.lock_timeout,
            retry=self.retry,
            liveness=RedisSettings.of(config).liveness,
        )

    def describe(self) -> str:
        if self.config.url:
            return f"redis -> {mask_url(self.config.url)}"
        # No URL: routed here by a client the user assigned (a broker URL it made unused is
        # dropped from the config, see redbeat_redis.plugin).
        return f"redis -> the client assigned to app.{APP_CLIENT_ATTRIBUTE} " + (
            f"({client_address(self.client)})"
        )


def check_replica_ack_timeout(redis: RedisSettings, client: Any) -> None:
    """Refuse an ack timeout the client's ``socket_timeout`` would cut short: a WAIT that
    blocks past it fails as a lost connection, so while a replica is away every busy tick
    would fail, and with at-most-once delivery nothing would be published at all."""
    if not redis.replica_acks:
        return
    pool = getattr(client, "connection_pool", None)
    socket_timeout = getattr(pool, "connection_kwargs", {}).get("socket_timeout")
    if socket_timeout is not None and socket_timeout <= redis.replica_ack_timeout:
        raise ConfigurationError(
            REPLICA_ACK_TIMEOUT_SETTING,
            redis.replica_ack_timeout,
            f"shorter than the client's socket_timeout ({socket_timeout:g}s): WAIT blocks on "
            "the socket for that long. Lower this setting or raise socket_timeout",
        )
