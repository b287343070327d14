"""``StoreBase``: the few methods a storage backend must write, and the rest derived from them.

:class:`~redbeat_core.typing.ScheduleStore` is the full surface the scheduler, entries and
plugins call (17 methods). Most of them are one of three operations in disguise: the atomic
write outside the tick (save, save many, delete, delete many, replace the statics, set the
statics), the bulk read (load one or many) and the ordered listing (count, rank). A backend that
subclasses :class:`StoreBase` writes those three operations once, plus what cannot be derived,
and gets every other method with the round trips the protocol promises::

    class MyStore(StoreBase):
        def claim_due(self, fence, now, limit): ...
        def commit(self, fence, updates, quarantine=()): ...
        def write(self, saves=(), deletes=(), *, keep_meta=True, statics=None): ...
        def load_many(self, names): ...
        def scheduled(self, start=0, stop=-1): ...
        def statics(self): ...
        def quarantined(self): ...
        def close(self): ...

``count`` and ``rank`` are derived from ``scheduled``, which reads the whole schedule: correct
for any store, slow for a big one. Override them where the storage counts and ranks by itself
(a sorted set's own commands, SQL's ``COUNT(*)``).

Subclassing is optional: a store may implement the protocol itself. The contract suite
(:mod:`redbeat_core.testing.contract`) tests the protocol, whichever way it was built.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from redbeat_core.typing import (
    ClaimResult,
    EntryUpdate,
    Fence,
    Quarantine,
    ScheduleStore,
    StoredEntry,
)

__all__ = ["StoreBase"]


class StoreBase(abc.ABC):
    """A :class:`~redbeat_core.typing.ScheduleStore` from eight required methods.

    Every abstract method's docstring says what it must do and why it cannot be derived from
    the others; every concrete one says what it is derived from, so a backend knows what it
    gives up by overriding it.
    """

    __slots__ = ()  # slotted subclasses (attrs' default) stay slotted

    # ----------------------------------------------------------------- required: the tick

    @abc.abstractmethod
    def claim_due(self, fence: Fence | None, now: float, limit: int) -> ClaimResult:
        """Check (and extend) the fence, then return up to ``limit`` entries due at ``now``
        in due order, with the next due time and the store's clock.

        Required because it is the tick's one read: the fence check, its extension and the
        read must be one atomic step, in one round trip, which no combination of other
        methods gives. Given a fence that no longer holds, return ``ClaimResult(owned=False)``
        and nothing else. A pure read otherwise: nothing is reserved or changed.
        """

    @abc.abstractmethod
    def commit(
        self,
        fence: Fence | None,
        updates: Sequence[EntryUpdate],
        quarantine: Sequence[Quarantine] = (),
    ) -> bool:
        """Apply meta/score updates and quarantines atomically under the fence, in one round
        trip; False (writing nothing) when the fence no longer holds.

        Required because it is the tick's one write, fenced like ``claim_due``. It must only
        change entries that are stored: an update for an entry deleted since the claim does
        nothing. ``update_meta`` is derived from it for that property.
        """

    # ----------------------------------------------------------------- required: storage

    @abc.abstractmethod
    def write(
        self,
        saves: Sequence[StoredEntry] = (),
        deletes: Sequence[str] = (),
        *,
        keep_meta: bool = True,
        statics: Sequence[str] | None = None,
    ) -> None:
        """Save ``saves``, delete ``deletes`` and, when ``statics`` is not None, replace the
        set of static names with it: all or nothing, in one round trip.

        Required because every write outside the tick is a case of it, and the start-up sync
        (``replace_statics``) needs all three parts in one atomic step: two beats starting at
        once both sync, and each must find either the other's complete result or none of it.
        It must not fail when another store writes the same names at the same moment (an
        upsert, not an insert that can hit a unique key).

        A save stores the entry's definition and policy (a policy of None keeps the stored
        one) and schedules it at ``score`` (None, or a negative score, takes it out of the
        schedule without deleting it). With ``keep_meta`` the meta is written only where none
        is stored, so a redefinition keeps ``last_run_at``; otherwise a given meta overwrites
        it. Saving an entry takes it out of the quarantine. A delete removes the entry, its
        score and its quarantine record; deleting a missing entry is no error.
        """

    @abc.abstractmethod
    def load_many(self, names: Sequence[str]) -> list[StoredEntry | None]:
        """The entries with their scores, in the order asked, None for missing ones, in one
        round trip.

        Required because the start-up sync reads every static's stored entry at once; ``load``
        is derived from it. An entry counts as stored when any of its parts is.
        """

    @abc.abstractmethod
    def scheduled(self, start: int = 0, stop: int = -1) -> list[tuple[str, float]]:
        """Names and scores in due order (ties by name), the slice ``start``..``stop``
        inclusive, negative indices counting from the end (-1 = the last), out-of-range ones
        clipped.

        Required because it is the only listing of the schedule; ``count`` and ``rank`` are
        derived from it.
        """

    @abc.abstractmethod
    def statics(self) -> set[str]:
        """Names of the entries that came from ``beat_schedule`` at the last start-up.

        Required because only the store keeps them (``write(statics=...)`` sets them).
        """

    @abc.abstractmethod
    def quarantined(self) -> dict[str, str]:
        """Quarantined entry names and the reasons given.

        Required because only the store keeps them (``commit`` records them, ``write`` clears
        them when an entry is saved or deleted).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects).

        Required because only the backend knows its connections. Called when a beat stops;
        entries may still be saved in the same process afterwards, so it must not break the
        store. Must not fail when the storage is unreachable.
        """

    # ----------------------------------------------------------------- derived: writes

    def save(self, entry: StoredEntry, *, keep_meta: bool = True) -> None:
        """Store one entry: ``write([entry])``."""
        self.write([entry], keep_meta=keep_meta)

    def save_many(self, entries: Sequence[StoredEntry], *, keep_meta: bool = True) -> None:
        """Store many entries in one round trip: ``write(entries)``; nothing to send, no trip."""
        if entries:
            self.write(entries, keep_meta=keep_meta)

    def replace_statics(
        self, entries: Sequence[StoredEntry], removed: Sequence[str], *, statics: Sequence[str]
    ) -> None:
        """The start-up sync of ``beat_schedule``: ``write(entries, removed, statics=...)``,
        keeping stored metas, atomically and in one round trip."""
        self.write(entries, removed, keep_meta=True, statics=statics)

    def update_meta(self, name: str, meta: str, score: float | None) -> None:
        """Overwrite one entry's meta and score: ``commit`` without a fence, which never
        recreates an entry that was deleted (a concurrent delete wins)."""
        self.commit(None, [EntryUpdate(name, meta, score)])

    def delete(self, name: str) -> None:
        """Remove one entry: ``write(deletes=[name])``."""
        self.write(deletes=[name])

    def delete_many(self, names: Iterable[str]) -> None:
        """Remove many entries in one round trip: ``write(deletes=names)``."""
        names = list(names)
        if names:
            self.write(deletes=names)

    def set_statics(self, names: Iterable[str]) -> None:
        """Replace the set of static names: ``write(statics=names)``."""
        self.write(statics=list(names))

    # ----------------------------------------------------------------- derived: reads

    def load(self, name: str) -> StoredEntry | None:
        """One entry with its score: ``load_many([name])``."""
        return self.load_many([name])[0]

    def count(self) -> int:
        """How many entries are scheduled: the length of ``scheduled()``. Reads the whole
        schedule; override it where the storage counts by itself."""
        return len(self.scheduled())

    def rank(self, name: str) -> int | None:
        """Position of the entry in due order (0 = next), None when not scheduled: its index
        in ``scheduled()``. Reads the whole schedule; override it where the storage ranks by
        itself."""
        for position, (scheduled_name, _score) in enumerate(self.scheduled()):
            if scheduled_name == name:
                return position
        return None


if TYPE_CHECKING:

    def _is_a_schedule_store(store: StoreBase) -> ScheduleStore:
        return store  # mypy proves the base class provides the whole protocol
