"""Provides :class:`NamespacedRedisLock` through the ``redbeat_make_lock`` hook.

Loaded through the entry point ``lockstrategy`` in the group ``redbeat`` once the distribution
is installed, or by import path with ``redbeat_plugins = ["redbeat_lockstrategy.plugin"]`` (which
also works when ``REDBEAT_DISABLE_PLUGIN_AUTOLOAD=1`` stops entry-point loading).

``redbeat_make_lock`` stops at the first non-None answer and RedBeat's own implementation is
``trylast``, so this one is asked first. It answers None, leaving the choice to the next
implementation (in the end RedBeat's default), when it has nothing to add: the app did not set
``redbeat_lockstrategy_enabled = True``, the backend does not keep the schedule in Redis, or
``redbeat_lock_key = None`` asked for a single beat without a lock.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import redis.cluster

from redbeat_core import hookimpl
from redbeat_core.config import RedBeatConfig
from redbeat_core.settings import SettingRegistry
from redbeat_core.typing import Backend, Lock
from redbeat_lockstrategy.lock import NamespacedRedisLock, RetryPolicy
from redbeat_lockstrategy.settings import LockStrategySettings, is_enabled, register

logger = logging.getLogger("celery.beat")


def redis_client_of(backend: Backend) -> Any:
    """The backend's redis-py client (``backend.client`` on RedBeat's Redis, Sentinel and
    Cluster backends), or None for a backend that does not keep the schedule in Redis."""
    client = getattr(backend, "client", None)
    if isinstance(client, redis.Redis | redis.cluster.RedisCluster):
        return client
    return None


def retry_of(backend: Backend) -> RetryPolicy | None:
    """The backend's retry policy (``backend.retry``), when it has one."""
    retry = getattr(backend, "retry", None)
    return retry if callable(getattr(retry, "call", None)) else None


@hookimpl
def redbeat_register_settings(registry: SettingRegistry) -> None:
    register(registry)


@hookimpl
def redbeat_make_lock(config: RedBeatConfig, backend: Backend) -> Lock | None:
    """A :class:`NamespacedRedisLock` on the backend's Redis client, or None to defer."""
    if not is_enabled(config):
        return None  # installed, not switched on: every beat must lock the same way
    if config.lock_key is None:
        return None  # no lock wanted: RedBeat's default runs without one
    client = redis_client_of(backend)
    if client is None:
        return None  # not a Redis store: its own lock is the one it can check
    settings = LockStrategySettings.from_config(config)
    logger.info(
        "beat: redbeat-lockstrategy: the beat lock is the lease %r (%gs); %r is not used",
        settings.key,
        settings.ttl,
        config.lock_key,
    )
    return NamespacedRedisLock(
        client=client, key=settings.key, ttl=settings.ttl, retry=retry_of(backend)
    )
