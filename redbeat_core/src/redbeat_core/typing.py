"""The interfaces between the scheduler and its storage.

Everything the Celery-facing layer knows about storage is in this module. A backend (RedBeat's
own, the SQLite example, a third party's) implements these Protocols; the scheduler calls nothing
else. Values crossing the boundary are plain strings (the entry's stored JSON) and floats (Unix
seconds), so a store never needs to know Celery or the codec, and the codec never needs to know
the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from redbeat_core.config import RedBeatConfig


# ----------------------------------------------------------------------------- values


@attrs.frozen
class StoredEntry:
    """One entry as stored: its name and the raw JSON of its three parts.

    ``definition`` is what celery-redbeat calls the definition (name, task, args, kwargs,
    options, schedule, enabled); ``meta`` holds last_run_at and total_run_count; ``policy`` holds
    RedBeat's own per-entry settings, kept apart so celery-redbeat never sees unknown keys.
    Any part may be ``None`` when the store has no value for it.
    """

    name: str
    definition: str | None
    meta: str | None = None
    policy: str | None = None
    score: float | None = None


@attrs.frozen
class Fence:
    """Proof of leadership that a store checks atomically with every scheduling read or write.

    A lock strategy hands this out once it holds the lock. Stores fence on the token, checked
    atomically with each read and write; the epoch is for observers (logs, the
    ``redbeat_lock_acquired`` hook, task headers a plugin may add), not checked by stores.

    The store checks a fence against its *own* lock storage (a key, a lease row):
    a lock strategy that replaces the backend's lock must keep its lease where the store looks,
    under ``key``; it may change the key, the TTL policy or how the lease is taken.

    :ivar key: the lock's name in the store's namespace.
    :ivar token: this beat's value in it (a random hex string per lock object).
    :ivar ttl: how long a successful check extends the lease, seconds.
    :ivar epoch: the fencing number given out when the lock was taken; it grows with every
        change of leader while the store keeps its data (0: the lock gives none).
    """

    key: str
    token: str
    ttl: float
    epoch: int = 0


@attrs.frozen
class RunRequest:
    """An operator's request to run an entry now, once (``Schedule.run_now``), as a claim
    returns it: the entry as stored (None when it was deleted since), when it was asked for
    and by whom. The run is published at the claiming tick, outside the entry's schedule, and
    the commit marks the request done (``requests_done``)."""

    name: str
    stored: StoredEntry | None
    requested_at: float
    by: str | None = None


@attrs.frozen
class ClaimResult:
    """What one scheduling read returns.

    ``owned`` is False when a fence was given and the store found that the lock is no longer
    ours: then ``entries`` is empty and the caller must stop dispatching. ``entries`` are due
    (score <= now) in due order, at most the limit asked for. ``next_due`` is the score of the
    first entry not returned (the earliest not-yet-claimed one), or None when the schedule holds
    nothing else. ``server_time`` is the store's clock, for diagnosing skew. ``quarantined``
    lists due records the store could not hand out at all (a record it cannot address or read
    as an entry) and moved to its quarantine while claiming, with the reason: the scheduler
    reports them. Most stores never have any.
    """

    owned: bool
    entries: Sequence[StoredEntry] = ()
    next_due: float | None = None
    server_time: float | None = None
    quarantined: Sequence[Quarantine] = ()
    #: Run-now requests due (stores with the ``RunRequestStore`` capability only).
    requests: Sequence[RunRequest] = ()


@attrs.frozen
class EntryUpdate:
    """A change the scheduler commits for one entry after it looked at it in a tick.

    ``meta`` is the new meta JSON, or None to keep the stored one. ``score`` is the new due time,
    or None to take the entry out of the schedule (disabled or finished: it stays stored, it is
    simply never claimed again until it is saved with a score).
    """

    name: str
    meta: str | None
    score: float | None


@attrs.frozen
class Quarantine:
    """An entry that cannot be decoded or run: the store takes it out of the schedule and records
    its name with the reason, so it is reported once and never blocks the others."""

    name: str
    reason: str


# ----------------------------------------------------------------------------- protocols


@runtime_checkable
class ScheduleStore(Protocol):
    """Where entries live and how a tick reads and writes them.

    Round trips matter: ``claim_due`` and ``commit`` are each expected to be one round trip
    whatever the number of entries involved; ``save_many`` one for the whole batch.

    One store serves a whole app: it must be safe to use from several threads (web requests
    saving entries) and in processes forked after it was created (prefork workers). Connection
    failures that outlive the backend's retries are raised as ``StoreUnavailableError``.
    """

    def claim_due(self, fence: Fence | None, now: float, limit: int) -> ClaimResult:
        """Check (and extend) the fence, then return up to ``limit`` entries due at ``now``."""
        ...

    def commit(
        self,
        fence: Fence | None,
        updates: Sequence[EntryUpdate],
        quarantine: Sequence[Quarantine] = (),
    ) -> bool:
        """Apply meta/score updates atomically under the fence. False when the fence is lost."""
        ...

    def save(self, entry: StoredEntry, *, keep_meta: bool = True) -> None:
        """Store an entry's definition and policy and schedule it at ``entry.score``.

        With ``keep_meta`` the meta is written only when none is stored (so a redefinition keeps
        last_run_at); otherwise it is overwritten. A ``score`` of None takes it out of the schedule.
        """
        ...

    def save_many(self, entries: Sequence[StoredEntry], *, keep_meta: bool = True) -> None:
        """``save`` for many entries in one round trip."""
        ...

    def replace_statics(
        self, entries: Sequence[StoredEntry], removed: Sequence[str], *, statics: Sequence[str]
    ) -> None:
        """Start-up sync of ``beat_schedule`` in one round trip: save ``entries`` (meta written
        only where none is stored, as ``save`` does), delete ``removed`` and replace the set of
        static names with ``statics``."""
        ...

    def update_meta(self, name: str, meta: str, score: float | None) -> None:
        """Overwrite one entry's meta and score (``reschedule``); does nothing when the entry
        is not stored (a concurrent delete wins)."""
        ...

    def delete(self, name: str) -> None:
        """Remove an entry completely. Deleting a missing entry is not an error."""
        ...

    def delete_many(self, names: Iterable[str]) -> None:
        """``delete`` for many entries in one round trip."""
        ...

    def load(self, name: str) -> StoredEntry | None:
        """One entry with its score, or None when it is not stored."""
        ...

    def load_many(self, names: Sequence[str]) -> list[StoredEntry | None]:
        """Entries in the order asked, None for missing ones, in one round trip."""
        ...

    def rank(self, name: str) -> int | None:
        """Position of the entry in due order (0 = next), None when not scheduled."""
        ...

    def scheduled(self, start: int = 0, stop: int = -1) -> list[tuple[str, float]]:
        """Names and scores in due order (slice ``start``..``stop`` inclusive; -1 = end)."""
        ...

    def count(self) -> int:
        """How many entries are scheduled."""
        ...

    def statics(self) -> set[str]:
        """Names of the entries that came from ``beat_schedule`` at the last start-up."""
        ...

    def set_statics(self, names: Iterable[str]) -> None:
        """Replace the set of static names."""
        ...

    def quarantined(self) -> dict[str, str]:
        """Quarantined entry names and the reasons given."""
        ...

    def close(self) -> None:
        """Release connections. The store may be used again afterwards (it reconnects)."""
        ...


@runtime_checkable
class Lock(Protocol):
    """Leadership among beats sharing one store. Exactly one beat holds it at a time."""

    @property
    def fence(self) -> Fence | None:
        """The fence to pass to the store while held, else None. A lock that never excludes
        (single-beat mode) returns None and the store skips the check."""
        ...

    def acquire(self) -> bool:
        """Try once, never block. True when this beat holds the lock afterwards."""
        ...

    def release(self) -> None:
        """Give the lock up if it is still ours, so a standby takes over at once."""
        ...

    def forget(self) -> None:
        """Drop local state after the store reported the lock lost (no round trip)."""
        ...

    @property
    def held(self) -> bool:
        """Whether this beat believes it holds the lock (last acquire/claim succeeded)."""
        ...


@runtime_checkable
class WaitsForRelease(Protocol):
    """A :class:`Lock` whose standbys can be woken when the holder gives the lease up (an
    optional capability: the scheduler checks for it with ``isinstance``)."""

    def wait_for_release(self, timeout: float) -> float:
        """Block up to ``timeout`` seconds, returning early when the lease was released.
        Return how long the caller should still sleep before its next attempt: 0 when woken
        or when it waited the whole time, ``timeout`` when it had nothing to wait on."""
        ...


class Backend(Protocol):
    """What a registered URL scheme builds: a store, and the default lock for that store."""

    @property
    def store(self) -> ScheduleStore:
        """The schedule store (one per backend, shared by the scheduler and entries)."""
        ...

    def make_lock(self, config: RedBeatConfig) -> Lock:
        """The backend's own lock (used unless a plugin's ``redbeat_make_lock`` decides)."""
        ...

    def describe(self) -> str:
        """One line for ``celery beat``'s banner, credentials masked."""
        ...


class BackendFactory(Protocol):
    """Builds a backend for a URL. Registered per scheme by ``redbeat_register_backends``."""

    def __call__(self, config: RedBeatConfig, app: Any) -> Backend: ...


JSONMapping = Mapping[str, object]
