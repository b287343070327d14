"""``RetryingConnection``: how the Redis backend retries when the server is unreachable.

A strategy object in the style of redis-py's ``Retry``: the policy owns the loop and callers
pass the operation. It is given only idempotent operations (every script the store sends writes
absolute values), so a retry after an unknown outcome is safe. ``retry_period``
keeps celery-redbeat's meaning: seconds to keep retrying; None = do not retry; -1 = forever.
The delay between attempts is redis-py's exponential backoff with jitter, capped at 30 s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

import redis.exceptions
from redis.backoff import AbstractBackoff, ExponentialWithJitterBackoff

logger = logging.getLogger("celery.beat")
T = TypeVar("T")

#: Errors after which the command may not have run: a retry is needed, and safe for our writes.
TRANSIENT_ERRORS: Final = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

#: Commands that only read, which the compat proxy (``RetryingConnection(...).get(...)``) retries.
_READ_ONLY: Final = frozenset(
    {
        "get", "mget", "hget", "hgetall", "hmget", "exists", "zrange", "zrangebyscore",
        "zrank", "zscore", "zcard", "smembers", "scard", "sismember", "ttl", "pttl",
        "ping", "info", "keys", "scan", "time", "type",
    }
)  # fmt: skip


class RetryPolicy(Protocol):
    """How the Redis backend retries an operation that failed on a transient error.

    The policy owns the loop; callers pass the operation. Only idempotent operations are ever
    given to it, so retrying after an unknown outcome is safe.
    """

    def call(self, operation: Callable[[], T]) -> T:
        """Run ``operation``, retrying transient failures as the policy allows."""
        ...


class RetryingConnection:
    """Retry policy for a Redis client, and celery-redbeat's wrapper of the same name.

    ``RetryingConnection(retry_period, client)`` keeps celery-redbeat's constructor. Attribute
    access is delegated to the wrapped client; read-only commands are retried, writes and
    pipelines are passed through untouched (retrying them blindly is how duplicates happen).
    """

    RETRY_MAX_WAIT: Final = 30.0

    def __init__(
        self,
        retry_period: float | None,
        wrapped_connection: Any = None,
        *,
        backoff: AbstractBackoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_period = retry_period
        self.wrapped_connection = wrapped_connection
        self.backoff = backoff or ExponentialWithJitterBackoff(cap=self.RETRY_MAX_WAIT, base=0.5)
        self._sleep = sleep
        self._clock = clock

    def call(self, operation: Callable[[], T]) -> T:
        """Run ``operation``; on a transient error retry it until ``retry_period`` runs out."""
        if self.retry_period is None:
            return operation()
        started = self._clock()
        failures = 0
        while True:
            try:
                return operation()
            except TRANSIENT_ERRORS as exc:
                if isinstance(exc, redis.exceptions.AuthenticationError):
                    raise  # a wrong password stays wrong: retrying only hides it
                failures += 1
                delay = self.backoff.compute(failures)
                elapsed = self._clock() - started
                if self.retry_period >= 0 and elapsed + delay > self.retry_period:
                    raise
                logger.warning(
                    "beat: Retrying Redis connection in %.2f seconds... (%s)", delay, exc
                )
                self._sleep(delay)

    def __getattr__(self, item: str) -> Any:
        attribute = getattr(self.wrapped_connection, item)
        if item not in _READ_ONLY or not callable(attribute):
            return attribute

        def retried(*args: Any, **kwargs: Any) -> Any:
            return self.call(lambda: attribute(*args, **kwargs))

        return retried
