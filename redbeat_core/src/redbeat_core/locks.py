"""Lock strategies and the base every leased lock shares.

:class:`LeaseLock` is what a lock on a lease (a value with an expiry, held by one token at a
time) always needs: its key and TTL, this beat's token, the fencing epoch, whether it believes
it holds the lease, and the :class:`~redbeat_core.typing.Lock` methods on top of them. A
backend writes only the two operations that touch its storage: take-or-extend and
release-if-ours. Renewal is not among them: the store extends the lease in every fenced
``claim_due`` and ``commit``, so holding the lock costs no round trip of its own.

:class:`NullLock` excludes nothing, for a single beat.
"""

from __future__ import annotations

import abc
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import ClassVar

import attrs

from redbeat_core.exceptions import LockNotOwnedError
from redbeat_core.typing import Fence

__all__ = ["Holder", "LeaseLock", "LockStatus", "NullLock", "beat_identity"]


def new_token() -> str:
    """A random owner token (uuid4, hex): what the lease holds and the store's fence checks."""
    return uuid.uuid4().hex


def beat_identity() -> str:
    """``host:pid`` of this process, read when asked (a forked child is another beat)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@attrs.frozen
class Holder:
    """Who holds a lease, as the holder recorded it beside the lease: for standbys' logs and
    ``redbeat lock``. ``identity`` is None when the holder did not record itself (a
    celery-redbeat beat, or a RedBeat older than this record)."""

    identity: str | None = None
    #: When it took the lease (Unix seconds, the storage's clock).
    since: float | None = None
    #: The fencing epoch it took the lease with.
    epoch: int | None = None

    def describe(self) -> str:
        """``beat-2:4121 (since 2026-12-05 09:30:00 UTC, epoch 7)``."""
        if self.identity is None:
            return "a beat that does not record who it is (celery-redbeat, or an older RedBeat)"
        details = []
        if self.since is not None:
            details.append(f"since {datetime.fromtimestamp(self.since, UTC):%Y-%m-%d %H:%M:%S} UTC")
        if self.epoch is not None:
            details.append(f"epoch {self.epoch}")
        return self.identity + (f" ({', '.join(details)})" if details else "")


@attrs.frozen
class LockStatus:
    """The beat lock as ``redbeat lock`` shows it: who leads, for how long still, who waits."""

    key: str
    #: Whether a beat holds the lease now.
    held: bool
    #: The holder, as it recorded itself (``identity`` None: it did not); None when free.
    holder: Holder | None
    #: Seconds left on the lease; None when free.
    lease_left: float | None
    #: The fencing epoch of the last acquisition (0: never taken).
    epoch: int
    #: Standbys that tried the lease recently: ``(identity, seconds since)``, latest first.
    standbys: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, object]:
        holder = self.holder
        return {
            "key": self.key,
            "held": self.held,
            "holder": None if holder is None else holder.identity,
            "since": None if holder is None or holder.since is None else holder.since,
            "holder_epoch": None if holder is None else holder.epoch,
            "lease_left": self.lease_left,
            "epoch": self.epoch,
            "standbys": [{"identity": i, "seen_ago": ago} for i, ago in self.standbys],
        }


@attrs.define
class LeaseLock(abc.ABC):
    """A :class:`~redbeat_core.typing.Lock` on a lease kept in the store's own storage.

    :param key: where the lease lives in the store's namespace; the fence carries it, and the
        store checks and extends the lease under it.
    :param ttl: how long a lease lasts, in seconds, from its last take or extension.
    :param token: this contender's value in the lease; a new random one by default, so every
        lock object is a contender of its own.
    :param epoch: the fencing number of the last acquisition (0 before the first).

    Subclasses implement :meth:`_take_or_extend` and :meth:`_release_if_ours`; every field
    here is keyword-only, so a subclass may put its own (a client, a database) first.
    """

    key: str = attrs.field(kw_only=True)
    ttl: float = attrs.field(kw_only=True)
    token: str = attrs.field(factory=new_token, kw_only=True)
    epoch: int = attrs.field(default=0, kw_only=True)
    _held: bool = attrs.field(default=False, init=False)
    #: Who held the lease when the last take failed, if the backend reports it (standbys log
    #: it when it changes); None otherwise.
    holder_seen: Holder | None = attrs.field(default=None, init=False)

    # ----------------------------------------------------------------- what a backend writes

    @abc.abstractmethod
    def _take_or_extend(self) -> int:
        """Take the lease for ``token`` for ``ttl`` seconds when it is free or expired, or
        extend it when ``token`` already holds it, atomically, in one round trip.

        Return the fencing epoch (>= 1) when ``token`` holds the lease afterwards, 0 when
        another token does. The epoch grows by one at every acquisition by anyone and stays
        the same when the holder extends its own lease. Storage errors are raised as
        :class:`~redbeat_core.exceptions.StoreUnavailableError`; a retry must be safe (taking
        again with the same token only extends).
        """

    @abc.abstractmethod
    def _release_if_ours(self) -> None:
        """Free the lease only if ``token`` still holds it, atomically: a beat that lost its
        lease must never free the one another beat took since. Storage errors are raised as
        :class:`~redbeat_core.exceptions.StoreUnavailableError`."""

    # ----------------------------------------------------------------- the Lock protocol

    @property
    def fence(self) -> Fence | None:
        """What the store checks with every claim and commit while the lease is held."""
        if not self._held:
            return None
        return Fence(key=self.key, token=self.token, ttl=self.ttl, epoch=self.epoch)

    @property
    def held(self) -> bool:
        """Whether the last acquire succeeded and nothing since said the lease was lost."""
        return self._held

    def acquire(self) -> bool:
        """Try once, never block: take the lease (or extend our own)."""
        epoch = self._take_or_extend()
        self._held = epoch > 0
        if self._held:
            self.epoch = epoch
        return self._held

    def release(self) -> None:
        """Give the lease up if it is still ours, so a standby takes over at once. The local
        state is dropped first: even if the storage cannot be reached, this beat no longer
        leads (the lease then lapses by itself)."""
        if not self._held:
            return
        self._held = False
        self._release_if_ours()

    def forget(self) -> None:
        """Drop the local state after the store reported the lease lost (no round trip)."""
        self._held = False

    # ----------------------------------------------------------- celery-redbeat's lock API
    # celery-redbeat's ``scheduler.lock`` was its client library's ``Lock``; code written for
    # it calls these, with the same meaning. The tick never does: it renews the lease inside
    # its own claim and commit.

    #: What :meth:`extend` raises on a lease this lock does not hold (a backend may raise a
    #: subclass that is also its client library's error).
    not_owned_error: ClassVar[type[LockNotOwnedError]] = LockNotOwnedError

    def owned(self) -> bool:
        """Whether the storage says this lock's token holds the lease now (one round trip,
        like celery-redbeat's lock); False without asking when this beat gave it up or
        never took it."""
        return self._held and self._holds_lease()

    def _holds_lease(self) -> bool:
        """Whether the lease in the storage holds ``token`` now. Backends that can read their
        lease override this; the default trusts the local state (what the last take, extension
        or fenced tick said)."""
        return True

    def extend(self, additional_time: float | None = None, replace_ttl: bool = False) -> bool:
        """Keep the lease for ``additional_time`` seconds from now (the lock's TTL when not
        given), or raise :attr:`not_owned_error` when it is not ours any more.

        celery-redbeat's lock added the time to what was left unless ``replace_ttl``; here the
        lease always runs ``additional_time`` from now, so calling it every tick (as
        celery-redbeat did, with its lock timeout) keeps a bounded lease instead of one that
        grows without limit and holds a standby off long after this beat died.
        ``replace_ttl`` is accepted for that signature and changes nothing.
        """
        del replace_ttl  # always replaced; see above
        if not self._held:
            raise self.not_owned_error(f"cannot extend the lock {self.key!r}: it is not held")
        ttl = self.ttl if additional_time is None else float(additional_time)
        if ttl <= 0:
            raise ValueError(f"additional_time must be positive, got {additional_time!r}")
        saved, self.ttl = self.ttl, ttl
        try:
            epoch = self._take_or_extend()
        finally:
            self.ttl = saved
        if epoch == 0:
            self._held = False
            raise self.not_owned_error(
                f"cannot extend the lock {self.key!r}: another beat holds it"
            )
        self.epoch = epoch  # the same, unless the lease lapsed and was taken again (fence moves)
        return True


@attrs.define
class NullLock:
    """No exclusion: for a single beat (``redbeat_lock_key = None``). Always held, no fence, so
    the store skips the leadership check."""

    _held: bool = False

    @property
    def fence(self) -> Fence | None:
        return None

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> bool:
        self._held = True
        return True

    def release(self) -> None:
        self._held = False

    def forget(self) -> None:
        self._held = False

    def owned(self) -> bool:
        """Held since :meth:`acquire` (there is no lease to ask)."""
        return self._held

    def extend(self, additional_time: float | None = None, replace_ttl: bool = False) -> bool:
        """Nothing to extend: only checks the lock is held."""
        del additional_time, replace_ttl
        if not self._held:
            raise LockNotOwnedError("cannot extend a lock that is not held")
        return True
