"""Registers the Redis backend and its settings with RedBeat (entry point ``redis`` in the group
``redbeat``)."""

from __future__ import annotations

from typing import Final

import attrs

from redbeat_core.config import RedBeatConfig
from redbeat_core.hookspecs import hookimpl
from redbeat_core.registry import BackendRegistry
from redbeat_core.settings import SettingRegistry
from redbeat_core.urls import url_scheme
from redbeat_redis import settings
from redbeat_redis.backend import RedisBackend
from redbeat_redis.connection import APP_CLIENT_ATTRIBUTE
from redbeat_redis.doctor import redbeat_doctor

__all__ = ["redbeat_doctor", "redbeat_register_backends", "redbeat_register_settings"]

SCHEMES: Final = ("redis", "rediss", "unix")
OWNER: Final = "redbeat-redis"
#: Where the URL comes from when RedBeat was not given one of its own.
BROKER_FALLBACK: Final = "broker_url"


def route_assigned_client(config: RedBeatConfig) -> str | None:
    """Serve a client assigned to ``app.redbeat_redis`` whatever the broker is.

    celery-redbeat used such a client without looking at any URL; users' test suites rely on
    it (a ``memory://`` broker, a client of their own assigned to the app). A URL RedBeat was
    given (``redbeat_url`` or ``redbeat_redis_url``) still decides, and so does a broker URL
    some backend serves (``redis://``, a Sentinel or Cluster URL): their backend uses the
    assigned client too."""
    app = config.app
    if app is None or getattr(app, APP_CLIENT_ATTRIBUTE, None) is None:
        return None
    if not config.url:
        return SCHEMES[0]
    scheme = url_scheme(config.url)
    if config.url_setting != BROKER_FALLBACK or scheme.startswith("redis") or scheme in SCHEMES:
        return None
    return SCHEMES[0]


def drop_unused_url(config: RedBeatConfig) -> RedBeatConfig:
    """Forget a broker URL that an assigned client makes unused (``memory://``, ``amqp://``):
    banners then show the client, and no warning says RedBeat falls back to the broker."""
    if config.url and route_assigned_client(config):
        return attrs.evolve(config, url="")
    return config


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    for scheme in SCHEMES:
        registry.register(scheme, RedisBackend.create, owner=OWNER, adjust_config=drop_unused_url)
    registry.route(route_assigned_client, owner=OWNER)


@hookimpl
def redbeat_register_settings(registry: SettingRegistry) -> None:
    settings.register(registry)
