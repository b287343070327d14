"""``NamespacedRedisLock``: a beat lock whose lease is a Redis string under its own key.

The lease is ``SET <key> <token> NX PX <ttl>``; a fencing epoch (``<key>:epoch``) grows by one
at each acquisition. Acquiring and releasing are one small Lua script each, so they are atomic.

Renewal is not done here: the Redis store checks the lock at every claim and commit by reading
``fence.key`` and comparing it with ``fence.token``, and extends it to ``fence.ttl`` in the same
script. That is why the lease must stay a plain Redis string holding the token: any other shape
and the store would find the lock lost at the first tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

import attrs
import redis.exceptions

from redbeat_core.exceptions import StoreUnavailableError
from redbeat_core.locks import LeaseLock

T = TypeVar("T")


class RetryPolicy(Protocol):
    """What this lock needs of a backend's retry policy (RedBeat's Redis backends give theirs
    as ``backend.retry``): ``call(operation)`` runs it, retrying transient failures."""

    def call(self, operation: Callable[[], T]) -> T: ...


#: KEYS[1] lease key, KEYS[2] epoch key; ARGV[1] token, ARGV[2] TTL in ms.
#: Returns the epoch (>= 1) when the lease is ours afterwards, 0 when another beat holds it.
ACQUIRE_SCRIPT: Final = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '1')
end
return 0
"""

#: KEYS[1] lease key; ARGV[1] token. Deletes the lease only while it is ours.
RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: What redis-py raises when the server cannot be reached or cannot take writes: reported to the
#: scheduler as the one storage error it knows, so the beat keeps its loop and steps down later.
UNAVAILABLE_ERRORS: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@attrs.define
class NamespacedRedisLock(LeaseLock):
    """A :class:`~redbeat_core.typing.Lock` on any redis-py client (plain, Sentinel or Cluster).

    RedBeat's :class:`~redbeat_core.locks.LeaseLock` holds the token, the epoch and whether
    the lease is held, and implements the lock's methods; this class only says how the lease
    is taken and released in Redis.

    :param client: the backend's Redis client.
    :param key: the lease key (the fence's key).
    :param ttl: the lease, in seconds; each claim and commit of the leader extends it to this.
    :param retry: the backend's retry policy, when it has one. Both scripts may be retried
        safely: acquiring again with the same token only extends the lease, releasing again
        deletes nothing.
    """

    client: Any = attrs.field(repr=False)
    retry: RetryPolicy | None = attrs.field(default=None, repr=False, kw_only=True)
    _scripts: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)

    @property
    def epoch_key(self) -> str:
        return self.key + ":epoch"

    def _take_or_extend(self) -> int:
        keys = [self.key, self.epoch_key]
        return int(self._run("acquire", ACQUIRE_SCRIPT, keys, [self.token, _ms(self.ttl)]))

    def _release_if_ours(self) -> None:
        self._run("release", RELEASE_SCRIPT, [self.key], [self.token])

    def _run(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(name)
        if script is None:  # redis-py's Script: EVALSHA, loading the script on NOSCRIPT
            script = self._scripts[name] = self.client.register_script(source)
        return self._call(lambda: script(keys=keys, args=args))

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            return self.retry.call(operation) if self.retry is not None else operation()
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnavailableError(f"Redis unreachable for the beat lock: {exc}") from exc
