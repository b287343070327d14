"""``RedisLock``: which beat dispatches, decided in Redis.

``SET <lock_key> <token> NX PX <ttl>`` on celery-redbeat's lock key, so a celery-redbeat beat
and ours never both hold it during a rolling migration. Each acquisition also increments
``<lock_key>:epoch``, a fencing number that grows with every change of leader. Renewal happens
inside the tick's own scripts (claim/commit check the token and extend the TTL atomically), so
holding the lock costs no extra round trip.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import attrs

from redbeat_core.exceptions import LockNotOwnedError
from redbeat_core.locks import LeaseLock
from redbeat_redis import scripts
from redbeat_redis.errors import RedisLockNotOwnedError
from redbeat_redis.retry import RetryPolicy
from redbeat_redis.store import call_translated

logger = logging.getLogger("celery.beat")


@attrs.define
class RedisLock(LeaseLock):
    """The :class:`~redbeat_core.typing.Lock` for Redis: a
    :class:`~redbeat_core.locks.LeaseLock` whose lease is the string at ``key``."""

    client: Any
    # Declared again (the base has them keyword-only) to keep the positional order
    # ``RedisLock(client, key, ttl, retry)``.
    key: str
    ttl: float
    retry: RetryPolicy
    _scripts: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)

    not_owned_error: ClassVar[type[LockNotOwnedError]] = RedisLockNotOwnedError

    @property
    def epoch_key(self) -> str:
        return self.key + ":epoch"

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = scripts.register(self.client, name)
        return call_translated(self.client, self.retry, lambda: script(keys=keys, args=args))

    def _take_or_extend(self) -> int:
        ttl_ms = max(1, round(self.ttl * 1000))
        return int(self._run("acquire_lock", [self.key, self.epoch_key], [self.token, ttl_ms]))

    def _release_if_ours(self) -> None:
        self._run("release_lock", [self.key], [self.token])

    def _holds_lease(self) -> bool:
        holder = call_translated(self.client, self.retry, lambda: self.client.get(self.key))
        if isinstance(holder, bytes):
            holder = holder.decode()
        return bool(holder == self.token)
