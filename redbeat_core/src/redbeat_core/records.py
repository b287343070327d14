"""An entry and its stored record, both ways: the one place that decodes and encodes entries.

A stored record (:class:`~redbeat_core.typing.StoredEntry`) holds three JSON parts and a score;
a Celery-facing entry (:class:`~redbeat_core.entry.RedBeatSchedulerEntry`) holds Celery's
schedule objects. The codec turns each JSON part into a model value and back; this module puts
the parts together, so the tick, the statics sync and the entry API all decode and encode the
same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from redbeat_core.codec import Codec
from redbeat_core.model import EntryMeta
from redbeat_core.typing import StoredEntry

if TYPE_CHECKING:
    from redbeat_core.entry import RedBeatSchedulerEntry

E = TypeVar("E", bound="RedBeatSchedulerEntry")


def decode_entry(
    stored: StoredEntry,
    *,
    app: Any,
    codec: Codec,
    entry_class: type[E],
    clock: Callable[[], datetime] | None = None,
) -> E:
    """The entry a store returned. Raises ``EntryDecodeError`` naming the entry.

    ``clock`` is the clock its schedule reads, unless the stored schedule has one of its own:
    the scheduler gives one instant per tick (see :meth:`Codec.decode_definition`).
    """
    name = stored.name
    definition = codec.decode_definition(stored.definition or "", name=name, clock=clock)
    meta = codec.decode_meta(stored.meta, name=name)
    policy = codec.decode_policy(stored.policy, name=name) if stored.policy else None
    return entry_class.from_model(definition, meta, policy, app=app)


def encode_entry(
    entry: RedBeatSchedulerEntry, *, codec: Codec, now: datetime | None = None
) -> StoredEntry:
    """What saving ``entry`` writes: definition, meta, policy and its score (None when it is
    disabled or finished, which keeps it out of the schedule). ``now`` pins the clock its next
    due time is computed at (see :meth:`RedBeatSchedulerEntry.now_or`)."""
    return StoredEntry(
        name=entry.name,
        definition=codec.encode_definition(entry.to_definition()),
        meta=codec.encode_meta(entry.to_meta()),
        policy=codec.encode_policy(entry.policy) if entry.policy is not None else None,
        score=entry.next_score(now),
    )


def encode_meta(codec: Codec, last_run_at: datetime | None, total_run_count: int | None) -> str:
    """The ``meta`` part for a run state (after a run, a skip, ``reschedule``)."""
    return codec.encode_meta(
        EntryMeta(last_run_at=last_run_at, total_run_count=total_run_count or 0)
    )
