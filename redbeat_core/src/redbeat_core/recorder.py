"""Turning what a tick did into run records (:mod:`redbeat_core.history`), and holding them
until the beat's next claim writes them.

The records are built once a tick's publishes are done, whatever the delivery mode, so they
say how each publish went, and they ride on the next round trip the beat makes anyway (see
the module docstring of :mod:`redbeat_core.history`). Nothing is built when the store keeps no
history or the settings turn it off, so a tick then costs what it did before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from redbeat_core.exceptions import RedBeatError
from redbeat_core.history import HistoryLimits, HistoryStore, Outcome, RunRecord
from redbeat_core.typing import RunRequest

if TYPE_CHECKING:
    from redbeat_core.dispatch import Published
    from redbeat_core.planning import Settled

logger = logging.getLogger("celery.beat")


@attrs.frozen
class Author:
    """Who ran the tick: the beat's ``host:pid`` and its fencing epoch."""

    beat: str
    epoch: int = 0


@attrs.define
class RunRecorder:
    """Builds a tick's records and holds them for the next claim."""

    store: HistoryStore | None
    limits: HistoryLimits
    #: Records built, not yet written (the next claim takes them).
    pending: list[RunRecord] = attrs.Factory(list)
    #: The last postponement recorded per entry (due time, reason): a run postponed again
    #: for the same reason (a run buffered behind a running one is re-checked every second)
    #: is recorded once, not once per check.
    _postponed: dict[str, tuple[float, str]] = attrs.Factory(dict)

    @classmethod
    def for_store(cls, store: Any, limits: HistoryLimits) -> RunRecorder:
        keeps = isinstance(store, HistoryStore) and limits.enabled
        return cls(store if keeps else None, limits)

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def hold(self, records: Sequence[RunRecord]) -> None:
        """Keep records for the next claim; the newest ``limits.total`` (or per-entry cap)
        at most, should claims keep failing."""
        self.pending.extend(records)
        keep = max(self.limits.total, self.limits.per_entry, 1)
        if len(self.pending) > keep:
            del self.pending[: len(self.pending) - keep]

    def take(self) -> list[RunRecord]:
        """The records held, handed to a claim (give them back if it fails)."""
        taken, self.pending = self.pending, []
        return taken

    def give_back(self, records: Sequence[RunRecord]) -> None:
        """Records a failed claim did not write, kept ahead of newer ones."""
        self.pending[:0] = records

    def flush(self) -> None:
        """Write what is held now, outside a claim: a beat that stops or lost the lock."""
        self.append(self.take())

    def published_runs(
        self, settled: Settled, published: Published, author: Author
    ) -> list[RunRecord]:
        """After the publishes: what each run became, and the plugins' skips."""
        now = time.time()
        records = [
            self._record(settled, s.index, "sent", s.published_at, author, None, s.task_id)
            for s in published.sent
        ]
        records += self._unpublished_runs(settled, published, author)
        return records + self._decided(settled, author, now)

    def _unpublished_runs(
        self, settled: Settled, published: Published, author: Author
    ) -> list[RunRecord]:
        """The runs whose publish failed or was not tried."""
        now = time.time()
        records = []
        kinds: tuple[tuple[Outcome, tuple[int, ...]], ...] = (
            ("failed", published.failed_at),
            ("unsent", published.unsent_at),
        )
        for outcome, places in kinds:
            for index in places:
                reason = published.reasons.get(index)
                records.append(self._record(settled, index, outcome, now, author, reason))
        return records

    def dropped_requests(
        self, dropped: Sequence[tuple[RunRequest, str]], author: Author
    ) -> list[RunRecord]:
        """Run-now requests that could not run (the entry is gone or unreadable)."""
        now = time.time()
        return [
            RunRecord(
                name=request.name,
                outcome="unsent",
                due_at=request.requested_at,
                at=now,
                beat=author.beat,
                epoch=author.epoch,
                reason=f"{_asked(request.by)}: {reason}",
                manual=True,
            )
            for request, reason in dropped
        ]

    def append(self, records: Sequence[RunRecord]) -> None:
        """Write records outside a claim. History never stops scheduling: a failure is
        logged and the records are dropped."""
        if not records or self.store is None:
            return
        try:
            self.store.append_history(records, self.limits)
        except RedBeatError as exc:
            logger.warning("beat: could not record %d runs in the history: %s", len(records), exc)

    def _decided(self, settled: Settled, author: Author, now: float) -> list[RunRecord]:
        records = []
        for skipped in settled.skipped:
            decision = skipped.decision
            name = skipped.entry.name
            if decision.action == "postpone":
                again = self._postponed.get(name) == (skipped.due_at, decision.reason)
                self._postponed[name] = (skipped.due_at, decision.reason)
                if again:
                    continue
            else:
                self._postponed.pop(name, None)
            records.append(
                RunRecord(
                    name=name,
                    outcome="skipped" if decision.action == "skip" else "postponed",
                    due_at=skipped.due_at,
                    at=now,
                    beat=author.beat,
                    epoch=author.epoch,
                    reason=f"{decision.reason} (plugin {decision.plugin or '?'})",
                )
            )
        return records

    @staticmethod
    def _record(
        settled: Settled,
        index: int,
        outcome: Outcome,
        at: float,
        author: Author,
        reason: str | None,
        task_id: str | None = None,
    ) -> RunRecord:
        """The record of the run at ``index`` of the tick's runs."""
        name, _, due_at = settled.publish[index]
        manual = index in settled.manual
        if manual:
            asked = _asked(settled.manual[index])
            reason = asked if reason is None else f"{asked}: {reason}"
        return RunRecord(
            name=name,
            outcome=outcome,
            due_at=due_at,
            at=at,
            task_id=task_id,
            beat=author.beat,
            epoch=author.epoch,
            reason=reason,
            manual=manual,
        )


def _asked(by: str | None) -> str:
    return f"run now, asked by {by}" if by else "run now"
