"""The smallest backend the kit allows: a store and a lease lock in this process's memory.

Only the required methods of ``StoreBase`` and the two storage operations of ``LeaseLock``
are written here; everything else comes from the base classes. The core tests run the
contract suite on it, which tests the bases' derived methods (``count`` and ``rank`` among
them, which the shipped backends override) without any server.

``MemoryStorage`` is the shared storage (one lock makes every call atomic); each
``MemoryStore`` on it is one "connection". It can also be made unreachable, for the outage
cases. It lives in one process, so it declares no fork support.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import attrs

from redbeat_core.exceptions import StoreUnavailableError
from redbeat_core.locks import LeaseLock
from redbeat_core.stores import StoreBase
from redbeat_core.typing import ClaimResult, EntryUpdate, Fence, Quarantine, StoredEntry


@attrs.define
class Lease:
    token: str | None
    expires_at: float
    epoch: int


@attrs.define
class MemoryStorage:
    """Everything a schedule holds, behind one lock."""

    entries: dict[str, StoredEntry] = attrs.field(factory=dict)
    statics: set[str] = attrs.field(factory=set)
    quarantine: dict[str, str] = attrs.field(factory=dict)
    leases: dict[str, Lease] = attrs.field(factory=dict)
    reachable: bool = True
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def check(self) -> None:
        if not self.reachable:
            raise StoreUnavailableError("the memory storage is unreachable (test outage)")

    def holds(self, fence: Fence) -> bool:
        """Whether ``fence`` holds its lease; if so, extend it (callers hold ``lock``)."""
        lease = self.leases.get(fence.key)
        now = time.monotonic()
        if lease is None or lease.token != fence.token or lease.expires_at <= now:
            return False
        lease.expires_at = now + fence.ttl
        return True


def _scheduled(storage: MemoryStorage) -> list[StoredEntry]:
    found = [e for e in storage.entries.values() if e.score is not None]
    return sorted(found, key=lambda e: (e.score, e.name))


@attrs.define
class MemoryStore(StoreBase):
    storage: MemoryStorage

    def claim_due(self, fence: Fence | None, now: float, limit: int) -> ClaimResult:
        with self.storage.lock:
            self.storage.check()
            if fence is not None and not self.storage.holds(fence):
                return ClaimResult(owned=False)
            due = _scheduled(self.storage)
            entries = [e for e in due[:limit] if e.score is not None and e.score <= now]
            rest = due[len(entries) :]
            next_due = rest[0].score if rest else None
            return ClaimResult(True, entries, next_due, time.time())

    def commit(
        self,
        fence: Fence | None,
        updates: Sequence[EntryUpdate],
        quarantine: Sequence[Quarantine] = (),
    ) -> bool:
        with self.storage.lock:
            self.storage.check()
            if fence is not None and not self.storage.holds(fence):
                return False
            entries = self.storage.entries
            for update in updates:
                if update.name in entries:
                    old = entries[update.name]
                    meta = old.meta if update.meta is None else update.meta
                    entries[update.name] = attrs.evolve(old, meta=meta, score=update.score)
            for item in quarantine:
                if item.name in entries:
                    entries[item.name] = attrs.evolve(entries[item.name], score=None)
                self.storage.quarantine[item.name] = item.reason
            return True

    def write(
        self,
        saves: Sequence[StoredEntry] = (),
        deletes: Sequence[str] = (),
        *,
        keep_meta: bool = True,
        statics: Sequence[str] | None = None,
    ) -> None:
        with self.storage.lock:
            self.storage.check()
            entries = self.storage.entries
            for new in saves:
                old = entries.get(new.name)
                meta = new.meta
                kept = old is not None and old.meta is not None and (keep_meta or meta is None)
                if kept and old is not None:
                    meta = old.meta
                policy = new.policy if new.policy is not None or old is None else old.policy
                score = new.score if new.score is not None and new.score >= 0 else None
                entries[new.name] = StoredEntry(new.name, new.definition, meta, policy, score)
                self.storage.quarantine.pop(new.name, None)
            for name in deletes:
                entries.pop(name, None)
                self.storage.quarantine.pop(name, None)
            if statics is not None:
                self.storage.statics = set(statics)

    def load_many(self, names: Sequence[str]) -> list[StoredEntry | None]:
        with self.storage.lock:
            self.storage.check()
            return [self.storage.entries.get(name) for name in names]

    def scheduled(self, start: int = 0, stop: int = -1) -> list[tuple[str, float]]:
        with self.storage.lock:
            self.storage.check()
            due = _scheduled(self.storage)
        total = len(due)
        start = max(total + start, 0) if start < 0 else start
        stop = total + stop if stop < 0 else stop
        return [(e.name, e.score) for e in due[start : stop + 1] if e.score is not None]

    def statics(self) -> set[str]:
        with self.storage.lock:
            self.storage.check()
            return set(self.storage.statics)

    def quarantined(self) -> dict[str, str]:
        with self.storage.lock:
            self.storage.check()
            return dict(self.storage.quarantine)

    def close(self) -> None:
        """Nothing to release: memory needs no connection."""


@attrs.define
class MemoryLease(LeaseLock):
    storage: MemoryStorage

    def _take_or_extend(self) -> int:
        with self.storage.lock:
            self.storage.check()
            now = time.monotonic()
            lease = self.storage.leases.setdefault(self.key, Lease(None, 0.0, 0))
            if lease.token == self.token and lease.expires_at > now:
                lease.expires_at = now + self.ttl
                return lease.epoch
            if lease.token is not None and lease.expires_at > now:
                return 0
            lease.token, lease.expires_at, lease.epoch = self.token, now + self.ttl, lease.epoch + 1
            return lease.epoch

    def _release_if_ours(self) -> None:
        with self.storage.lock:
            self.storage.check()
            lease = self.storage.leases.get(self.key)
            if lease is not None and lease.token == self.token:
                lease.token, lease.expires_at = None, 0.0
