"""``RedisLock``: which beat dispatches, decided in Redis.

``SET <lock_key> <token> NX PX <ttl>`` on celery-redbeat's lock key, so a celery-redbeat beat
and ours never both hold it during a rolling migration. Each acquisition also increments
``<lock_key>:epoch``, a fencing number that grows with every change of leader. Renewal happens
inside the tick's own scripts (claim/commit check the token and extend the TTL atomically), so
holding the lock costs no extra round trip.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import attrs

from redbeat_core.typing import Fence, RetryPolicy
from redbeat_redis import scripts
from redbeat_redis.store import call_translated

logger = logging.getLogger("celery.beat")


@attrs.define
class RedisLock:
    """The :class:`~redbeat_core.typing.Lock` for Redis."""

    client: Any
    key: str
    ttl: float
    retry: RetryPolicy
    token: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    epoch: int = 0
    _held: bool = False
    _scripts: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)

    @property
    def epoch_key(self) -> str:
        return self.key + ":epoch"

    @property
    def fence(self) -> Fence | None:
        if not self._held:
            return None
        return Fence(key=self.key, token=self.token, ttl=self.ttl, epoch=self.epoch)

    @property
    def held(self) -> bool:
        return self._held

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = scripts.register(self.client, name)
        return call_translated(self.client, self.retry, lambda: script(keys=keys, args=args))

    def acquire(self) -> bool:
        ttl_ms = max(1, round(self.ttl * 1000))
        epoch = int(self._run("acquire_lock", [self.key, self.epoch_key], [self.token, ttl_ms]))
        self._held = epoch > 0
        if self._held:
            self.epoch = epoch
        return self._held

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        self._run("release_lock", [self.key], [self.token])

    def forget(self) -> None:
        self._held = False
