"""Registers the Redis backend with RedBeat (entry point ``redis`` in the group ``redbeat``)."""

from __future__ import annotations

from redbeat_core.hookspecs import hookimpl
from redbeat_core.registry import BackendRegistry
from redbeat_redis.backend import RedisBackend

SCHEMES = ("redis", "rediss", "unix")


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    for scheme in SCHEMES:
        registry.register(scheme, RedisBackend.create, owner="redbeat-redis")
