"""What a leader logs every few minutes, and a standby when the leader changes.

An operator reading a beat's log should see what it is doing without turning on DEBUG: the
leader says how many entries there are and what it dispatched, skipped, published late or
failed to publish since its last summary; a standby says it is one and who leads, once, and
again when that changes. Nothing here costs a round trip per tick: the leader counts the
entries (one command) only when a summary is due.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import attrs

from redbeat_core.locks import Holder

logger = logging.getLogger("celery.beat")

#: A publish this many seconds after its due time counts as late in the summary.
LATE_AFTER: Final = 1.0
SUMMARY_SETTING: Final = "redbeat_summary_interval"
DEFAULT_SUMMARY_INTERVAL: Final = 300.0


@attrs.define
class LeaderSummary:
    """Counts since the last summary line; :meth:`maybe_log` writes one every ``interval``
    seconds (never when ``interval`` is 0)."""

    interval: float
    _since: float = attrs.field(factory=time.monotonic)
    dispatched: int = 0
    skipped: int = 0
    late: int = 0
    failed: int = 0

    def add(self, *, dispatched: int = 0, skipped: int = 0, late: int = 0, failed: int = 0) -> None:
        self.dispatched += dispatched
        self.skipped += skipped
        self.late += late
        self.failed += failed

    def due(self) -> bool:
        return self.interval > 0 and time.monotonic() - self._since >= self.interval

    def log(self, entries: int | None) -> None:
        """Write the line and start counting afresh."""
        elapsed = time.monotonic() - self._since
        logger.info(
            "beat: leader summary: %s entries scheduled; in the last %.0fs %d dispatched, "
            "%d skipped, %d late (over %gs), %d failed to publish",
            "?" if entries is None else f"{entries:,}",
            elapsed,
            self.dispatched,
            self.skipped,
            self.late,
            LATE_AFTER,
            self.failed,
        )
        self.reset()

    def reset(self) -> None:
        self._since = time.monotonic()
        self.dispatched = self.skipped = self.late = self.failed = 0


@attrs.define
class StandbyNotes:
    """What a standby has said about the leader, so it says it once per leader."""

    _said: tuple[str | None, int | None] | bool = False

    def seen(self, lock_key: str | None, holder: Holder | None) -> None:
        """Log that this beat is a standby and who leads, when that is news."""
        said = (holder.identity, holder.epoch) if holder is not None else True
        if said == self._said:
            return
        self._said = said
        if holder is None:
            logger.info(
                "beat: standby: another beat holds the lock %s; this beat takes over when it "
                "is released or lapses",
                lock_key,
            )
            return
        logger.info(
            "beat: standby: the lock %s is held by %s; this beat takes over when it is "
            "released or lapses",
            lock_key,
            holder.describe(),
        )

    def forget(self) -> None:
        """This beat leads now: the next time it is a standby is news again."""
        self._said = False
