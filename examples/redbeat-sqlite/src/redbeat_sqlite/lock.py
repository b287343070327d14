"""``SqliteLock``: which beat dispatches, decided by a lease row.

The row ``lease(key = redbeat_lock_key)`` holds the holder's token, when the lease expires and
a fencing epoch. Taking the lock is one upsert: it succeeds when the row is missing, released
(token NULL), expired, or already ours; the epoch grows by one at every acquisition by anyone
(re-acquiring one's own unexpired lease only extends it). Releasing clears the token but keeps
the row, so the epoch never goes back.

Expiry is judged by SQLite's clock (``julianday('now')``) inside the statement that reads the
lease, in this module and in the store's fence check alike; see :mod:`redbeat_sqlite.database`
for why that is one clock for every process. Renewal happens in the store's ``claim_due`` and
``commit`` (they extend the lease they check), so holding the lock costs nothing extra.
"""

from __future__ import annotations

from typing import Final

import attrs

from redbeat_core.locks import LeaseLock
from redbeat_sqlite.database import NOW, Database

_ACQUIRE: Final = f"""
INSERT INTO lease (key, token, expires_at, epoch) VALUES (:key, :token, {NOW} + :ttl, 1)
ON CONFLICT (key) DO UPDATE SET
    token = excluded.token,
    expires_at = excluded.expires_at,
    epoch = CASE WHEN lease.token = excluded.token AND lease.expires_at > {NOW}
                 THEN lease.epoch ELSE lease.epoch + 1 END
WHERE lease.token IS NULL OR lease.token = excluded.token OR lease.expires_at <= {NOW}
RETURNING epoch
"""  # noqa: S608 (only the NOW constant is interpolated)
_RELEASE: Final = "UPDATE lease SET token = NULL, expires_at = 0 WHERE key = ? AND token = ?"


@attrs.define
class SqliteLock(LeaseLock):
    """The :class:`~redbeat_core.typing.Lock` on a SQLite lease row: RedBeat's
    :class:`~redbeat_core.locks.LeaseLock` (token, epoch, held, fence, acquire, release) with
    its two storage operations written as one statement each."""

    database: Database

    def _take_or_extend(self) -> int:
        with self.database.transaction(write=True) as conn:
            rows = conn.execute(
                _ACQUIRE, {"key": self.key, "token": self.token, "ttl": self.ttl}
            ).fetchall()
        return int(rows[0][0]) if rows else 0

    def _release_if_ours(self) -> None:
        with self.database.transaction(write=True) as conn:
            conn.execute(_RELEASE, (self.key, self.token))
