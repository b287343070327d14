"""``InterruptibleStore``: a real store that a test can cut off from the scheduler.

The contract suite runs a real ``RedBeatScheduler`` through an outage on every backend,
including those whose storage a test cannot take away. It puts this wrapper between the
scheduler and the backend's store: while ``unreachable`` is set, every call raises
:class:`~redbeat_core.exceptions.StoreUnavailableError` before it reaches the store, which is
what a backend raises once its own retries gave up; otherwise every call goes to the store
unchanged. ``close`` always reaches the store: releasing connections never needs the storage.

It is a fault injected at the interface, not a fake store: the entries, the claims and the
commits are the backend's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from redbeat_core.exceptions import StoreUnavailableError
from redbeat_core.typing import (
    ClaimResult,
    EntryUpdate,
    Fence,
    Quarantine,
    ScheduleStore,
    StoredEntry,
)

__all__ = ["InterruptibleStore"]


@attrs.define
class InterruptibleStore:
    """A :class:`~redbeat_core.typing.ScheduleStore` that passes every call to ``inner`` unless
    ``unreachable`` is set. ``refused`` counts the calls refused, so a test can tell that the
    scheduler really tried the storage during the outage."""

    inner: ScheduleStore
    unreachable: bool = False
    refused: int = 0

    def _reach(self, operation: str) -> ScheduleStore:
        if self.unreachable:
            self.refused += 1
            raise StoreUnavailableError(f"{operation}: the storage is unreachable (test outage)")
        return self.inner

    def claim_due(self, fence: Fence | None, now: float, limit: int) -> ClaimResult:
        return self._reach("claim_due").claim_due(fence, now, limit)

    def commit(
        self,
        fence: Fence | None,
        updates: Sequence[EntryUpdate],
        quarantine: Sequence[Quarantine] = (),
    ) -> bool:
        return self._reach("commit").commit(fence, updates, quarantine)

    def save(self, entry: StoredEntry, *, keep_meta: bool = True) -> None:
        self._reach("save").save(entry, keep_meta=keep_meta)

    def save_many(self, entries: Sequence[StoredEntry], *, keep_meta: bool = True) -> None:
        self._reach("save_many").save_many(entries, keep_meta=keep_meta)

    def replace_statics(
        self, entries: Sequence[StoredEntry], removed: Sequence[str], *, statics: Sequence[str]
    ) -> None:
        self._reach("replace_statics").replace_statics(entries, removed, statics=statics)

    def update_meta(self, name: str, meta: str, score: float | None) -> None:
        self._reach("update_meta").update_meta(name, meta, score)

    def delete(self, name: str) -> None:
        self._reach("delete").delete(name)

    def delete_many(self, names: Iterable[str]) -> None:
        self._reach("delete_many").delete_many(names)

    def load(self, name: str) -> StoredEntry | None:
        return self._reach("load").load(name)

    def load_many(self, names: Sequence[str]) -> list[StoredEntry | None]:
        return self._reach("load_many").load_many(names)

    def rank(self, name: str) -> int | None:
        return self._reach("rank").rank(name)

    def scheduled(self, start: int = 0, stop: int = -1) -> list[tuple[str, float]]:
        return self._reach("scheduled").scheduled(start, stop)

    def count(self) -> int:
        return self._reach("count").count()

    def statics(self) -> set[str]:
        return self._reach("statics").statics()

    def set_statics(self, names: Iterable[str]) -> None:
        self._reach("set_statics").set_statics(names)

    def quarantined(self) -> dict[str, str]:
        return self._reach("quarantined").quarantined()

    def close(self) -> None:
        self.inner.close()
