"""``SqliteStore``: RedBeat's schedule in tables of one SQLite file.

``entries`` holds each entry's three JSON parts (stored as given, never interpreted) and its
due time (``score``; NULL keeps it out of the schedule), ``statics`` the names that came from
``beat_schedule``, ``quarantine`` the entries that could not be scheduled, with the reason, and
``lease`` the beat lock (see :mod:`redbeat_sqlite.lock`), ``entry_runs`` and ``runs`` the run
history (per entry and for the whole schedule: the store is a ``HistoryStore``).

``claim_due`` and ``commit`` are one transaction each. Given a fence, both first check that the
lease is still held by the fence's token and unexpired, and extend it, in the same
``BEGIN IMMEDIATE`` transaction as the reads or writes they guard: what the Lua scripts of the
Redis backend do in one ``EVAL``.

The schedule is the whole file: one schedule per database file (``redbeat_key_prefix`` only
shows up in the name of the lock, ``redbeat_lock_key``). Use another file for another schedule.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Final

import attrs

from redbeat_core.audit import AuditRecord
from redbeat_core.history import HistoryLimits, RunRecord
from redbeat_core.stores import StoreBase
from redbeat_core.typing import (
    ClaimResult,
    EntryUpdate,
    Fence,
    Quarantine,
    RunRequest,
    StoredEntry,
)
from redbeat_sqlite.database import NOW, Database

#: Names per ``IN (...)`` query: well under SQLite's smallest host-parameter limit (999).
_CHUNK: Final = 500

_EXTEND_LEASE: Final = f"""
UPDATE lease SET expires_at = {NOW} + :ttl
WHERE key = :key AND token = :token AND expires_at > {NOW}
"""  # noqa: S608 (only the NOW constant is interpolated)
_DUE: Final = """
SELECT name, score, definition, meta, policy FROM entries
WHERE score IS NOT NULL ORDER BY score, name LIMIT ?
"""
_REQUESTS: Final = """
SELECT r.name, r.requested_at, r.by, e.definition, e.meta, e.policy
FROM run_requests r LEFT JOIN entries e ON e.name = r.name
WHERE r.requested_at <= ? ORDER BY r.requested_at
"""
_SAVE: Final = """
INSERT INTO entries (name, definition, meta, policy, score) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    definition = excluded.definition,
    policy = COALESCE(excluded.policy, entries.policy),
    meta = CASE WHEN ? THEN COALESCE(entries.meta, excluded.meta)
                ELSE COALESCE(excluded.meta, entries.meta) END,
    score = excluded.score
"""


def _score(score: float | None) -> float | None:
    """A due time to store: None (or celery-redbeat's -1, "finished") means not scheduled."""
    return None if score is None or score < 0 else float(score)


def _extend(conn: sqlite3.Connection, fence: Fence) -> bool:
    """Whether the fence still holds the lease; if so, it is extended by ``fence.ttl``."""
    cursor = conn.execute(_EXTEND_LEASE, {"ttl": fence.ttl, "key": fence.key, "token": fence.token})
    return cursor.rowcount == 1


def _count(conn: sqlite3.Connection) -> int:
    """How many entries are scheduled."""
    return int(conn.execute("SELECT COUNT(*) FROM entries WHERE score IS NOT NULL").fetchone()[0])


def _chunks(names: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(names), _CHUNK):
        yield names[start : start + _CHUNK]


def _record(conn: sqlite3.Connection, records: Sequence[RunRecord], limits: HistoryLimits) -> None:
    """Append run records and trim both histories to their limits (the oldest go)."""
    if limits.per_entry > 0:
        conn.executemany(
            "INSERT INTO entry_runs (name, record) VALUES (?, ?)",
            [(r.name, r.to_json()) for r in records],
        )
        conn.executemany(
            "DELETE FROM entry_runs WHERE name = ? AND id <= (SELECT id FROM entry_runs "
            "WHERE name = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            [(name, name, limits.per_entry) for name in {r.name for r in records}],
        )
    if limits.total > 0:
        conn.executemany("INSERT INTO runs (record) VALUES (?)", [(r.to_json(),) for r in records])
        conn.execute("DELETE FROM runs WHERE id <= (SELECT MAX(id) FROM runs) - ?", (limits.total,))


@attrs.define
class SqliteStore(StoreBase):
    """The :class:`~redbeat_core.typing.ScheduleStore` in a SQLite file.

    It writes the required methods of :class:`~redbeat_core.stores.StoreBase` (``claim_due``,
    ``commit``, ``write``, ``load_many``, ``scheduled``, ``statics``, ``quarantined``,
    ``close``) and overrides ``count`` and ``rank``, which SQL answers without reading the
    whole schedule; the base class supplies the rest.
    """

    database: Database

    # ----------------------------------------------------------------- the tick

    def claim_due(
        self,
        fence: Fence | None,
        now: float,
        limit: int,
        *,
        history: Sequence[RunRecord] = (),
        limits: HistoryLimits = HistoryLimits(),  # noqa: B008 (frozen)
    ) -> ClaimResult:
        """The claim, and the last tick's run records written first (``HistoryStore``).
        Without a fence or records it is a pure read: a deferred transaction (one snapshot)."""
        with self.database.transaction(write=fence is not None or bool(history)) as conn:
            if fence is not None and not _extend(conn, fence):
                return ClaimResult(owned=False)
            if history:
                _record(conn, history, limits)
            server_time = float(conn.execute(f"SELECT {NOW}").fetchone()[0])
            # limit + 1: the extra row, if any, says when the next tick is due.
            rows = conn.execute(_DUE, (limit + 1,)).fetchall()
            requests = [
                RunRequest(
                    name,
                    None if definition is None else StoredEntry(name, definition, meta, policy),
                    float(at),
                    by,
                )
                for name, at, by, definition, meta, policy in conn.execute(_REQUESTS, (now,))
            ]
        entries: list[StoredEntry] = []
        next_due: float | None = None
        for name, score, definition, meta, policy in rows:
            if len(entries) >= limit or score > now:
                next_due = float(score)
                break
            entries.append(StoredEntry(name, definition, meta, policy, float(score)))
        return ClaimResult(
            owned=True,
            entries=entries,
            next_due=next_due,
            server_time=server_time,
            requests=requests,
        )

    def commit(
        self,
        fence: Fence | None,
        updates: Sequence[EntryUpdate],
        quarantine: Sequence[Quarantine] = (),
        *,
        requests_done: Sequence[str] = (),
    ) -> bool:
        with self.database.transaction(write=True) as conn:
            if fence is not None and not _extend(conn, fence):
                return False
            # An UPDATE of a missing row changes nothing: a deleted entry stays deleted.
            conn.executemany(
                "UPDATE entries SET meta = COALESCE(?, meta), score = ? WHERE name = ?",
                [(u.meta, _score(u.score), u.name) for u in updates],
            )
            conn.executemany(
                "UPDATE entries SET score = NULL WHERE name = ?", [(q.name,) for q in quarantine]
            )
            conn.executemany(
                "INSERT INTO quarantine (name, reason) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET reason = excluded.reason",
                [(q.name, q.reason) for q in quarantine],
            )
            conn.executemany(
                "DELETE FROM run_requests WHERE name = ?", [(name,) for name in requests_done]
            )
        return True

    def append_audit(self, records: Sequence[AuditRecord], limit: int) -> None:
        with self.database.transaction(write=True) as conn:
            conn.executemany(
                "INSERT INTO audit (record) VALUES (?)", [(r.to_json(),) for r in records]
            )
            conn.execute("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (limit,))

    def audit(self, limit: int) -> list[str]:
        with self.database.transaction(write=False) as conn:
            rows = conn.execute("SELECT record FROM audit ORDER BY id DESC LIMIT ?", (limit,))
            return [record for (record,) in rows]

    def request_run(self, name: str, by: str | None, at: float) -> None:
        with self.database.transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO run_requests (name, requested_at, by) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET requested_at = excluded.requested_at, "
                "by = excluded.by",
                (name, at, by),
            )

    def append_history(self, records: Sequence[RunRecord], limits: HistoryLimits) -> None:
        with self.database.transaction(write=True) as conn:
            _record(conn, records, limits)

    def history(self, name: str | None, limit: int) -> list[str]:
        with self.database.transaction(write=False) as conn:
            if name is None:
                rows = conn.execute("SELECT record FROM runs ORDER BY id DESC LIMIT ?", (limit,))
            else:
                rows = conn.execute(
                    "SELECT record FROM entry_runs WHERE name = ? ORDER BY id DESC LIMIT ?",
                    (name, limit),
                )
            return [record for (record,) in rows]

    # ----------------------------------------------------------------- writes

    def write(
        self,
        saves: Sequence[StoredEntry] = (),
        deletes: Sequence[str] = (),
        *,
        keep_meta: bool = True,
        statics: Sequence[str] | None = None,
    ) -> None:
        """Every write outside the tick in one ``BEGIN IMMEDIATE`` transaction: the base class
        derives save, save_many, replace_statics, delete, delete_many and set_statics from it.
        Saves are upserts, so two beats syncing the same statics at once never collide."""
        with self.database.transaction(write=True) as conn:
            conn.executemany(
                _SAVE,
                [
                    (e.name, e.definition or "", e.meta, e.policy, _score(e.score), keep_meta)
                    for e in saves
                ],
            )
            # Saving is how a fixed entry leaves the quarantine; deleting clears it too.
            touched = [(e.name,) for e in saves] + [(name,) for name in deletes]
            conn.executemany("DELETE FROM quarantine WHERE name = ?", touched)
            conn.executemany("DELETE FROM entries WHERE name = ?", [(n,) for n in deletes])
            conn.executemany("DELETE FROM entry_runs WHERE name = ?", [(n,) for n in deletes])
            if statics is not None:
                conn.execute("DELETE FROM statics")
                conn.executemany(
                    "INSERT OR IGNORE INTO statics (name) VALUES (?)", [(n,) for n in statics]
                )

    # ----------------------------------------------------------------- reads

    def load_many(self, names: Sequence[str]) -> list[StoredEntry | None]:
        if not names:
            return []
        found: dict[str, StoredEntry] = {}
        unique = list(dict.fromkeys(names))
        with self.database.transaction(write=False) as conn:
            for chunk in _chunks(unique):
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT name, definition, meta, policy, score FROM entries "  # noqa: S608
                    f"WHERE name IN ({marks})",
                    tuple(chunk),
                )
                for name, definition, meta, policy, score in rows:
                    found[name] = StoredEntry(name, definition, meta, policy, score)
        return [found.get(name) for name in names]

    def rank(self, name: str) -> int | None:
        """Counted by SQLite, rather than the base class's read of the whole schedule."""
        with self.database.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT score FROM entries WHERE name = ? AND score IS NOT NULL", (name,)
            ).fetchone()
            if row is None:
                return None
            before = conn.execute(
                "SELECT COUNT(*) FROM entries WHERE score IS NOT NULL "
                "AND (score < ? OR (score = ? AND name < ?))",
                (row[0], row[0], name),
            ).fetchone()
        return int(before[0])

    def scheduled(self, start: int = 0, stop: int = -1) -> list[tuple[str, float]]:
        """``ZRANGE``'s slice: ``start``..``stop`` inclusive, negative indices from the end."""
        with self.database.transaction(write=False) as conn:
            if start < 0 or stop < 0:
                total = _count(conn)
                start = max(total + start, 0) if start < 0 else start
                stop = total + stop if stop < 0 else stop
            if stop < start:
                return []
            rows = conn.execute(
                "SELECT name, score FROM entries WHERE score IS NOT NULL "
                "ORDER BY score, name LIMIT ? OFFSET ?",
                (stop - start + 1, start),
            ).fetchall()
        return [(name, float(score)) for name, score in rows]

    def count(self) -> int:
        """Counted by SQLite, rather than the base class's read of the whole schedule."""
        with self.database.transaction(write=False) as conn:
            return _count(conn)

    def statics(self) -> set[str]:
        with self.database.transaction(write=False) as conn:
            return {name for (name,) in conn.execute("SELECT name FROM statics")}

    def names(self) -> list[str]:
        """Every stored entry's name, scheduled or not (``redbeat list`` shows them all)."""
        with self.database.transaction(write=False) as conn:
            return [name for (name,) in conn.execute("SELECT name FROM entries ORDER BY name")]

    def quarantined(self) -> dict[str, str]:
        with self.database.transaction(write=False) as conn:
            return dict(conn.execute("SELECT name, reason FROM quarantine").fetchall())

    def close(self) -> None:
        self.database.close()
