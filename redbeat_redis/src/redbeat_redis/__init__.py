"""RedBeat's Redis/Valkey backend."""

from redbeat_redis.backend import RedisBackend
from redbeat_redis.connection import client_for
from redbeat_redis.lock import RedisLock
from redbeat_redis.retry import RetryingConnection
from redbeat_redis.store import RedisKeys, RedisStore

__all__ = [
    "RedisBackend",
    "RedisKeys",
    "RedisLock",
    "RedisStore",
    "RetryingConnection",
    "client_for",
]
