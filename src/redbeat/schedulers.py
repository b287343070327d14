"""celery-redbeat's ``redbeat.schedulers`` module: the same names at the same paths."""

from __future__ import annotations

import logging
from typing import Any

from celery.app import app_or_default
from celery.signals import beat_init

from redbeat_core.appconf import AppConf
from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.runtime import ensure_conf as _ensure_conf
from redbeat_core.runtime import get_runtime
from redbeat_core.scheduler import RedBeatScheduler
from redbeat_redis.connection import APP_CLIENT_ATTRIBUTE
from redbeat_redis.retry import RetryingConnection
from redbeat_redis.settings import RedisSettings

logger = logging.getLogger("celery.beat")

__all__ = [
    "RedBeatConfig",
    "RedBeatScheduler",
    "RedBeatSchedulerEntry",
    "RetryingConnection",
    "acquire_distributed_beat_lock",
    "ensure_conf",
    "get_redis",
]


class RedBeatConfig(AppConf):
    """celery-redbeat's ``RedBeatConfig(app)``: the app's settings, which code may read and
    change (``schedule``, ``key_prefix``, ``lock_key``, ``lock_timeout``) and query with
    ``either_or``. ``app.redbeat_conf`` holds one; assigning one there is allowed, as in
    celery-redbeat. RedBeat runs on the checked, frozen ``config`` underneath."""

    def __init__(self, app: Any = None) -> None:
        super().__init__(app_or_default(app))


def ensure_conf(app: Any = None) -> AppConf:
    """The app's ``RedBeatConfig``, kept on ``app.redbeat_conf``."""
    return _ensure_conf(app_or_default(app))


def get_redis(app: Any = None) -> Any:
    """The Redis client RedBeat uses for ``app`` (``app.redbeat_redis``, created if needed).

    With ``retry_period`` set in ``redbeat_redis_options``, the client comes wrapped in a
    :class:`RetryingConnection`, as in celery-redbeat.
    """
    app = app_or_default(app)
    runtime = get_runtime(app)
    client = getattr(runtime.backend, "client", None)
    if client is None:
        client = getattr(app, APP_CLIENT_ATTRIBUTE, None)
    retry_period = RedisSettings.of(runtime.config).retry_period
    if retry_period is not None:
        return RetryingConnection(retry_period, client)
    return client


@beat_init.connect  # type: ignore[untyped-decorator]
def acquire_distributed_beat_lock(sender: Any = None, **kwargs: Any) -> None:
    """Try the beat lock once when beat starts; never blocks (a standby keeps polling in its
    ticks, so it still answers ``celery inspect ping``). A no-op for other schedulers."""
    scheduler = getattr(sender, "scheduler", None)
    if not isinstance(scheduler, RedBeatScheduler) or not scheduler.lock_key:
        return
    scheduler.try_acquire_lock()
