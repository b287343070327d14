"""``RedisLock``: which beat dispatches, decided in Redis.

``SET <lock_key> <token> NX PX <ttl>`` on celery-redbeat's lock key, so a celery-redbeat beat
and ours never both hold it during a rolling migration. Each acquisition also increments
``<lock_key>:epoch``, a fencing number that grows with every change of leader. Renewal happens
inside the tick's own scripts (claim/commit check the token and extend the TTL atomically), so
holding the lock costs no extra round trip.

With liveness on (``redbeat_lock_liveness``, the default), each contender also keeps a
subscription that closes with its process (:mod:`redbeat_redis.liveness`): standbys take over
from a leader whose process died at their next poll, and wait for a graceful release on a
channel instead of sleeping, while the lease still bounds what the server cannot see.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import attrs

from redbeat_core.exceptions import LockNotOwnedError
from redbeat_core.locks import Holder, LeaseLock, LockStatus, beat_identity
from redbeat_redis import acl, scripts
from redbeat_redis.errors import RedisLockNotOwnedError
from redbeat_redis.liveness import LeaseWatch
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
    #: Whether this contender watches, and takes over from, a leader whose process died
    #: (``redbeat_lock_liveness``).
    liveness: bool = attrs.field(default=True, kw_only=True)
    _scripts: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)
    _watch: LeaseWatch | None = attrs.field(default=None, init=False, repr=False)
    #: What the server refused of liveness inside the scripts (each logged once).
    _refusals: set[str] = attrs.field(factory=set, init=False, repr=False)

    not_owned_error: ClassVar[type[LockNotOwnedError]] = RedisLockNotOwnedError

    @property
    def epoch_key(self) -> str:
        return self.key + ":epoch"

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = scripts.register(self.client, name)
        return call_translated(self.client, self.retry, lambda: script(keys=keys, args=args))

    @property
    def holder_key(self) -> str:
        """Who holds the lease (a hash beside it: the lock's value stays a bare token)."""
        return self.key + ":holder"

    @property
    def standbys_key(self) -> str:
        """Standbys by when they last tried the lease (a sorted set, ms)."""
        return self.key + ":standbys"

    def _watcher(self) -> LeaseWatch | None:
        if not self.liveness:
            return None
        if self._watch is None:
            self._watch = LeaseWatch(self.client, self.key, self.token)
        return self._watch

    def _take_or_extend(self) -> int:
        ttl_ms = max(1, round(self.ttl * 1000))
        keys = [self.key, self.epoch_key, self.holder_key, self.standbys_key]
        watch = self._watcher()
        channel = watch.ensure() if watch is not None else ""
        args = [self.token, ttl_ms, beat_identity(), channel, "1" if self.liveness else "0"]
        reply = self._run("acquire_lock", keys, args)
        epoch = int(reply[0])
        if epoch == 0:  # another beat holds it: who, as it recorded itself
            _, identity, since, holder_epoch, note = reply
            self.holder_seen = Holder(
                identity=_text(identity),
                since=int(since) / 1000 if since else None,
                epoch=int(holder_epoch) if holder_epoch else None,
            )
            if note:
                self._refused_in_script("pubsub|numsub", _text(note) or "")
            return 0
        _, previous, lease_left, note = reply
        if note:
            self._refused_in_script("pubsub|numsub", _text(note) or "")
        if lease_left is not None:  # taken from a holder whose process died
            logger.warning(
                "beat: the leader %s is gone (the server closed its connection) with %.1fs "
                "of its lease left; taking over now",
                _text(previous) or "that did not record who it is",
                max(0, int(lease_left)) / 1000,
            )
        self.holder_seen = None
        return epoch

    def _release_if_ours(self) -> None:
        try:
            released, note = self._run("release_lock", [self.key], [self.token])
        finally:
            if self._watch is not None:
                self._watch.close()  # a beat that stopped leading watches again when it tries
        if released and note:
            self._refused_in_script("publish", _text(note) or "")

    def wait_for_release(self, timeout: float) -> float:
        """Wait up to ``timeout`` seconds for the leader to release the lease (a standby's
        pause between polls); return how long to sleep still: 0 when woken or when it waited
        it all, ``timeout`` when it cannot wait (liveness off or refused, or not subscribed)."""
        if self._held or self._watch is None:
            return timeout
        return self._watch.wait(timeout)

    def _refused_in_script(self, command: str, refusal: str) -> None:
        """A liveness command refused inside a script: say once what to grant."""
        if command in self._refusals:
            return
        self._refusals.add(command)
        user = acl.username(self.client)
        effect = {
            "pubsub|numsub": "this standby cannot tell whether the leader's process is alive "
            "and waits for its lease to lapse",
            "publish": "standbys learn of a release at their next poll instead of at once",
        }[command]
        grant = acl.liveness_grant(self.key, refusal)
        if grant == acl.liveness_grant(self.key):  # the refusal names nothing: the command
            grant = [f"+{command}"]
        logger.warning(
            "beat: Redis refused %s to the ACL user %r in the lock's script (%s): %s. "
            "Grant it: ACL SETUSER %s %s",
            command.replace("|", " ").upper(),
            user,
            refusal.rstrip("."),
            effect,
            user,
            " ".join(grant),
        )

    def status(self, recent: float = 60.0) -> LockStatus:
        """Who holds the lease, for how long still, and the standbys seen in the last
        ``recent`` seconds: one round trip of reads (``redbeat lock``; two on a cluster,
        whose client refuses TIME in a pipeline: it names no key, so no slot)."""
        cluster = hasattr(self.client, "get_default_node")

        def read() -> list[Any]:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.get(self.key)
                pipe.pttl(self.key)
                pipe.get(self.epoch_key)
                pipe.hgetall(self.holder_key)
                pipe.zrange(self.standbys_key, 0, -1, withscores=True)
                if not cluster:
                    pipe.time()
                replies = list(pipe.execute())
            if cluster:
                replies.append(self.client.time())
            return replies

        token, pttl, epoch, record, standbys, (seconds, micros) = call_translated(
            self.client, self.retry, read
        )
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        record = {_text(k): _text(v) for k, v in (record or {}).items()}
        token = _text(token)
        holder = None
        if token is not None:
            recorded = record.get("token") == token
            holder = Holder(
                identity=record.get("identity") if recorded else None,
                since=int(record["since"]) / 1000 if recorded and record.get("since") else None,
                epoch=int(record["epoch"]) if recorded and record.get("epoch") else None,
            )
        seen = [
            (_text(member) or "", (now_ms - score) / 1000)
            for member, score in standbys
            if now_ms - score <= recent * 1000
        ]
        return LockStatus(
            key=self.key,
            held=token is not None,
            holder=holder,
            lease_left=pttl / 1000 if token is not None and pttl and pttl > 0 else None,
            epoch=int(_text(epoch) or 0),
            standbys=tuple(sorted(seen, key=lambda item: item[1])),
        )

    def _holds_lease(self) -> bool:
        holder = call_translated(self.client, self.retry, lambda: self.client.get(self.key))
        if isinstance(holder, bytes):
            holder = holder.decode()
        return bool(holder == self.token)


def _text(value: Any) -> str | None:
    if value is None or value is False:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
