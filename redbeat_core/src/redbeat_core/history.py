"""Run history: what each tick did with each due run, kept bounded in the store.

Every publish, failed publish, run left unsent and run a plugin skipped or postponed becomes a
:class:`RunRecord`: the entry, its due time, when it happened, the task id, the beat (host and
pid) and its fencing epoch, and the outcome with its reason. A store that keeps history
(:class:`HistoryStore`, a capability: a store without it schedules exactly as before) writes
a tick's records with the beat's next claim, the round trip every tick starts with, so a busy
tick costs no extra round trip and its commit (at-most-once: before its publishes) carries
nothing more: the records are built once the publishes are done, with each run's real publish
time, its task id, and how it went. A leader claims at least every lock renewal, so records
land within ``redbeat_lock_timeout`` / 3 (3.3 s); a beat that stops or loses the lock writes
what it holds at once (one round trip, then).

History is kept per entry (the last ``redbeat_history_per_entry`` records of each) and for the
whole schedule (the last ``redbeat_history_total``), newest first. Deleting an entry deletes its
own list; its records stay in the schedule's until they are pushed out.

Records are JSON objects of plain values, written and read by RedBeat only (never by
celery-redbeat). A record another program wrote that cannot be read is skipped when read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol, get_args, runtime_checkable

import attrs

from redbeat_core.typing import ClaimResult, Fence

__all__ = ["HistoryLimits", "HistoryStore", "Outcome", "RunRecord", "decode_records"]

#: ``json.dumps(..., separators=...)`` builds an encoder per call; this one is built once.
_encode = json.JSONEncoder(separators=(",", ":")).encode

Outcome = Literal["sent", "failed", "unsent", "skipped", "postponed"]
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)

#: Defaults of ``redbeat_history_per_entry`` and ``redbeat_history_total``. Ten per entry is
#: Sidekiq-Cron's default, enough to see a pattern; a million entries with ten records each
#: take about 1.5 GB of storage, which is why the per-entry count is a setting (0: none).
DEFAULT_PER_ENTRY: Final = 10
DEFAULT_TOTAL: Final = 10_000


@attrs.frozen
class RunRecord:
    """One thing that happened to one due run.

    :ivar name: the entry's name.
    :ivar outcome: ``sent`` (published; under at-most-once: committed as run and handed to the
        publish), ``failed`` (``apply_async`` raised), ``unsent`` (not tried: the lease may have
        lapsed, or the broker kept failing), ``skipped`` / ``postponed`` (a plugin decided).
    :ivar due_at: when the run was due, Unix seconds.
    :ivar at: when it was published, failed or decided, Unix seconds.
    :ivar task_id: the Celery task id it was (or would have been) published with.
    :ivar beat: the beat that did it (``host:pid``).
    :ivar epoch: that beat's fencing epoch (grows with each change of leader; 0: no lock).
    :ivar reason: why it failed, was not sent, skipped or postponed.
    :ivar manual: a run an operator asked for (``run now``), not one of the schedule's.
    """

    name: str
    outcome: Outcome
    due_at: float
    at: float
    task_id: str | None = None
    beat: str | None = None
    epoch: int = 0
    reason: str | None = None
    manual: bool = False

    @property
    def lateness(self) -> float:
        """Seconds between the due time and :attr:`at`."""
        return self.at - self.due_at

    def to_json(self) -> str:
        """The stored form: a JSON object; fields at their default are left out. On the
        tick's path (one per run), hence the one encoder built once."""
        data: dict[str, Any] = {
            "name": self.name,
            "outcome": self.outcome,
            "due_at": self.due_at,
            "at": self.at,
        }
        if self.task_id:
            data["task_id"] = self.task_id
        if self.beat:
            data["beat"] = self.beat
        if self.epoch:
            data["epoch"] = self.epoch
        if self.reason:
            data["reason"] = self.reason
        if self.manual:
            data["manual"] = True
        return _encode(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunRecord | None:
        """A stored record, or None when it is not one (another program's data)."""
        try:
            data = json.loads(text)
            outcome = data["outcome"]
            due_at, at = float(data["due_at"]), float(data["at"])
            if outcome not in OUTCOMES or not (math.isfinite(due_at) and math.isfinite(at)):
                return None
            return cls(
                name=str(data["name"]),
                outcome=outcome,
                due_at=due_at,
                at=at,
                task_id=_text(data.get("task_id")),
                beat=_text(data.get("beat")),
                epoch=int(data.get("epoch") or 0),
                reason=_text(data.get("reason")),
                manual=bool(data.get("manual")),
            )
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``--json`` output and the dashboard."""
        return attrs.asdict(self)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def decode_records(texts: Sequence[str | bytes]) -> list[RunRecord]:
    """The readable records among ``texts``, in their order."""
    return [record for text in texts if (record := RunRecord.from_json(text)) is not None]


@attrs.frozen
class HistoryLimits:
    """How many records a store keeps: per entry, and for the whole schedule."""

    per_entry: int = DEFAULT_PER_ENTRY
    total: int = DEFAULT_TOTAL

    @property
    def enabled(self) -> bool:
        return self.per_entry > 0 or self.total > 0


@runtime_checkable
class HistoryStore(Protocol):
    """A store that keeps run history: the capability, on top of
    :class:`~redbeat_core.typing.ScheduleStore`.

    Its ``claim_due`` takes the last tick's records and, once the fence holds, writes them in
    the same round trip, each list trimmed to ``limits`` (the newest kept); a claim whose
    fence no longer holds writes nothing. History must never stop scheduling: a history write
    that cannot be done (a key another program broke) is dropped, not raised, and the claim
    goes on.
    """

    def claim_due(
        self,
        fence: Fence | None,
        now: float,
        limit: int,
        *,
        history: Sequence[RunRecord] = (),
        limits: HistoryLimits = HistoryLimits(),
    ) -> ClaimResult:
        """``ScheduleStore.claim_due``, writing ``history`` first."""
        ...

    def append_history(self, records: Sequence[RunRecord], limits: HistoryLimits) -> None:
        """Write records outside a claim (a beat that stops or lost the lock), in one round
        trip; not fenced."""
        ...

    def history(self, name: str | None, limit: int) -> list[str]:
        """The newest ``limit`` stored records (JSON text), newest first: ``name``'s, or the
        whole schedule's when ``name`` is None."""
        ...
