"""Registers the Redis backend and its settings with RedBeat (entry point ``redis`` in the group
``redbeat``)."""

from __future__ import annotations

from redbeat_core.hookspecs import hookimpl
from redbeat_core.registry import BackendRegistry
from redbeat_core.settings import SettingRegistry
from redbeat_redis import settings
from redbeat_redis.backend import RedisBackend

SCHEMES = ("redis", "rediss", "unix")


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    for scheme in SCHEMES:
        registry.register(scheme, RedisBackend.create, owner="redbeat-redis")


@hookimpl
def redbeat_register_settings(registry: SettingRegistry) -> None:
    settings.register(registry)
