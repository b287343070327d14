"""``LeaseWatch``: how the server learns, at once, that a beat's process is gone.

A lease alone makes a crashed leader's standbys wait for it to lapse (10 s by default). But the
kernel closes a dead process's sockets at once, and Redis then drops that connection's
subscriptions. So every contender keeps one subscription of its own, on
``<lock key>:alive:<token>``, open from before it first tries the lease; the acquire script
records the channel beside the lease when it takes it, and a standby whose poll finds that
channel without a subscriber (``PUBSUB NUMSUB``, which needs no admin rights) takes the lease
over at once. Whatever the server cannot see, a frozen process, a lost host or a partition,
keeps the connection open as far as it knows: the lease still bounds those. Fencing is
unchanged: the lease's token moves, so a leader that was only cut off fails its next claim.

The same connection listens on ``<lock key>:released``, where a leader that stops gracefully
publishes its release: standbys wait on it instead of sleeping between polls, and take over
within milliseconds instead of up to a poll interval.

Everything here is best effort and never stops a beat: a server or ACL user that refuses the
subscription is logged once with the permission to grant, and the lease is then the only
signal, as before.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs
import redis.exceptions

from redbeat_redis import acl
from redbeat_redis.retry import TRANSIENT_ERRORS

logger = logging.getLogger("celery.beat")

#: How long to wait for the server to confirm the subscriptions when first made: a round
#: trip, whose reply must be in before the acquire script counts the subscription.
CONFIRM_TIMEOUT = 2.0


def alive_channel(lock_key: str, token: str) -> str:
    """The channel a contender stays subscribed to while its process lives."""
    return f"{lock_key}:alive:{token}"


def released_channel(lock_key: str) -> str:
    """The channel a leader publishes its token on when it gives the lease up."""
    return f"{lock_key}:released"


@attrs.define
class LeaseWatch:
    """One contender's liveness subscription and its wake-up on releases (a connection of its
    own, opened at the first attempt on the lease, never when the lock is built)."""

    client: Any
    lock_key: str
    token: str
    _pubsub: Any = attrs.field(default=None, init=False, repr=False)
    #: Why the server refuses the subscription (logged once); None while it accepts it.
    _refused: str | None = attrs.field(default=None, init=False)

    @property
    def channel(self) -> str:
        return alive_channel(self.lock_key, self.token)

    @property
    def released(self) -> str:
        return released_channel(self.lock_key)

    def ensure(self) -> str:
        """Subscribe if not yet subscribed, and return the liveness channel to record with the
        lease ('' when there is no subscription to record: refused, or unreachable now)."""
        if self._pubsub is not None:
            return self.channel
        if self._refused is not None:
            return ""
        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(self.channel, self.released)
            confirmed = 0
            deadline = time.monotonic() + CONFIRM_TIMEOUT
            while confirmed < 2 and time.monotonic() < deadline:
                message = pubsub.get_message(timeout=deadline - time.monotonic())
                if message is not None and message.get("type") == "subscribe":
                    confirmed += 1
            if confirmed < 2:
                raise redis.exceptions.TimeoutError("no confirmation of SUBSCRIBE")
        except redis.exceptions.ResponseError as exc:
            _close(pubsub)
            self._refuse(exc)
            return ""
        except (*TRANSIENT_ERRORS, OSError):
            _close(pubsub)  # tried again at the next attempt; the lease is the signal now
            return ""
        self._pubsub = pubsub
        return self.channel

    def wait(self, timeout: float) -> float:
        """Wait up to ``timeout`` seconds for a release; return how long the caller should
        still sleep: 0 when woken by a release or after waiting it all, ``timeout`` when there
        is nothing to wait on (no subscription)."""
        pubsub = self._pubsub
        if pubsub is None:
            return timeout
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if message is not None and _text(message.get("channel")) == self.released:
                    return 0.0
        except (*TRANSIENT_ERRORS, OSError, redis.exceptions.ResponseError):
            self.close()  # subscribed again at the next attempt on the lease
            return max(0.0, deadline - time.monotonic())
        return 0.0

    def close(self) -> None:
        """Drop the subscription (a leader that released the lease, a beat that stops)."""
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            _close(pubsub)

    def _refuse(self, exc: Exception) -> None:
        """Log once why the server refuses the subscription, and what to grant."""
        self._refused = message = str(exc).rstrip(".")
        if not is_acl_refusal(exc):  # a proxy without pub/sub, say
            logger.warning(
                "beat: the storage server refused the lock's liveness subscription (%s); "
                "standbys take over only when a dead leader's lease lapses",
                message,
            )
            return
        user = acl.username(self.client)
        logger.warning(
            "beat: Redis refused the lock's liveness subscription to the ACL user %r (%s); "
            "standbys take over only when a dead leader's lease lapses. Grant it: "
            "ACL SETUSER %s %s",
            user,
            message,
            user,
            " ".join(acl.liveness_grant(self.lock_key, message)),
        )


def is_acl_refusal(exc: BaseException) -> bool:
    """An ACL refusal (of a command or of a channel)."""
    return (
        isinstance(exc, redis.exceptions.NoPermissionError) or "no permissions" in str(exc).lower()
    )


def _close(pubsub: Any) -> None:
    try:
        pubsub.close()
    except (*TRANSIENT_ERRORS, OSError):
        pass  # its connection is gone already


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
