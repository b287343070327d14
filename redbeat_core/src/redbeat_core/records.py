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

from redbeat_core import validation
from redbeat_core.codec import Codec
from redbeat_core.exceptions import EntryDecodeError, InvalidEntryError
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
    _check_text(stored)
    definition = codec.decode_definition(stored.definition or "", name=name, clock=clock)
    meta = codec.decode_meta(stored.meta, name=name)
    policy = codec.decode_policy(stored.policy, name=name) if stored.policy else None
    return entry_class.from_model(definition, meta, policy, app=app)


def _check_text(stored: StoredEntry) -> None:
    """Refuse an entry whose stored name or fields are not UTF-8 text.

    A backend reads bytes that are not UTF-8 (written by another program) with Python's
    ``surrogateescape`` error handler, which keeps each bad byte as a lone surrogate and lets
    the backend write the same bytes back (to quarantine the entry under its real key). Valid
    UTF-8 never decodes to a surrogate, so one here means exactly "not UTF-8"; JSON's own
    ``\\udcff`` escapes are still text at this point and are judged by the codec."""
    parts = (("name", stored.name), ("definition", stored.definition), ("meta", stored.meta))
    for what, text in (*parts, ("policy", stored.policy)):
        if text is None or text.isascii():
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(text[exc.start])
            shown = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "a surrogate"
            raise EntryDecodeError(
                stored.name,
                f"its stored {what} is not UTF-8 text ({shown} at character {exc.start}): "
                "RedBeat stores JSON text. Another program wrote it; save the entry again or "
                "delete it",
            ) from None


def encode_entry(
    entry: RedBeatSchedulerEntry, *, codec: Codec, now: datetime | None = None
) -> StoredEntry:
    """What saving ``entry`` writes: definition, meta, policy and its score (None when it is
    disabled or finished, which keeps it out of the schedule). ``now`` pins the clock its next
    due time is computed at (see :meth:`RedBeatSchedulerEntry.now_or`).

    ``entry`` has passed :func:`~redbeat_core.validation.check_entry`. Raises
    ``InvalidEntryError`` naming the field that holds a value the codec cannot write, or the
    schedule when its next run cannot be computed."""
    definition = encode_definition(entry, codec)
    try:
        score = entry.next_score(now)
    except Exception as exc:  # the schedule's own arithmetic (a date past the year 9999...)
        raise InvalidEntryError(
            entry.name,
            "schedule",
            entry.schedule,
            f"a schedule whose next run can be computed ({type(exc).__name__}: {exc})",
        ) from exc
    return StoredEntry(
        name=entry.name,
        definition=definition,
        meta=codec.encode_meta(entry.to_meta()),
        policy=encode_policy(entry, codec),
        score=score,
    )


def encode_definition(entry: RedBeatSchedulerEntry, codec: Codec) -> str:
    """The ``definition`` part of a checked entry. Raises ``InvalidEntryError`` naming the field
    that holds a value the codec cannot write (found only when encoding failed)."""
    definition = entry.to_definition()
    try:
        return codec.encode_definition(definition)
    except (TypeError, ValueError, RecursionError) as exc:
        raise validation.unencodable(codec, definition, None, exc) from exc


def encode_policy(entry: RedBeatSchedulerEntry, codec: Codec) -> str | None:
    """The ``policy`` part of a checked entry (None: keep the stored one). Raises
    ``InvalidEntryError`` when a value in it cannot be written."""
    if entry.policy is None:
        return None
    try:
        return codec.encode_policy(entry.policy)
    except (TypeError, ValueError, RecursionError) as exc:
        raise validation.unencodable(codec, entry.to_definition(), entry.policy, exc) from exc


def encode_meta(codec: Codec, last_run_at: datetime | None, total_run_count: int | None) -> str:
    """The ``meta`` part for a run state (after a run, a skip, ``reschedule``)."""
    return codec.encode_meta(
        EntryMeta(last_run_at=last_run_at, total_run_count=total_run_count or 0)
    )
