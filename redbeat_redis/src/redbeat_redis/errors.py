"""Errors that are RedBeat's and redis-py's at once.

The core raises :class:`~redbeat_core.exceptions.StoreUnavailableError` for an outage so the
scheduler (and any backend) handles one type. Code written for celery-redbeat catches
redis-py's own errors around ``save()``, ``from_key()`` or ``delete()`` (``except
redis.ConnectionError``); under the Redis backends the errors raised are both, so that code
keeps working and new code may catch either.
"""

from __future__ import annotations

import redis

from redbeat_core.exceptions import (
    BrokenStoreError,
    LockNotOwnedError,
    StorePermissionError,
    StoreUnavailableError,
)

__all__ = [
    "RedisBrokenError",
    "RedisLockNotOwnedError",
    "RedisPermissionError",
    "RedisReadOnlyError",
    "RedisUnavailableError",
]


class RedisUnavailableError(
    StoreUnavailableError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError
):
    """Redis could not be reached (refused, reset, timed out) after the retry policy gave up.
    Also a redis-py ``ConnectionError`` and ``TimeoutError``: celery-redbeat raised one of
    them for the same outage."""


class RedisReadOnlyError(StoreUnavailableError, redis.exceptions.ReadOnlyError):
    """The server answered READONLY: a demoted master behind the URL. Also redis-py's
    ``ReadOnlyError``, what celery-redbeat raised."""


class RedisBrokenError(BrokenStoreError, redis.exceptions.ResponseError):
    """The server refused the work (a key of the wrong type, out of memory, a refused command).
    Also a redis-py ``ResponseError``, what celery-redbeat raised."""


class RedisLockNotOwnedError(LockNotOwnedError, redis.exceptions.LockNotOwnedError):
    """``scheduler.lock.extend()`` on a lease this beat does not hold; also redis-py's
    ``LockNotOwnedError`` (celery-redbeat's lock was a redis-py ``Lock``)."""


class RedisPermissionError(StorePermissionError, redis.exceptions.NoPermissionError):
    """The server's ACL refused a command or key; also redis-py's ``NoPermissionError`` (what
    celery-redbeat raised). The message names what to grant."""
