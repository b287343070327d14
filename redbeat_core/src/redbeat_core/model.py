"""The stored parts of a schedule entry, as plain values.

An entry is stored as one hash with three JSON fields, each modelled here:

- ``definition``: :class:`EntryDefinition`, what celery-redbeat 2.x calls the definition.
  celery-redbeat reads it with ``ScheduleEntry(**definition)``, so it never gets a key that
  celery-redbeat does not know.
- ``meta``: :class:`EntryMeta`, the run state (when it last ran, how often).
- ``policy``: :class:`EntryPolicy`, RedBeat's own per-entry settings. celery-redbeat never reads it.

:mod:`redbeat_core.codec` turns these into the exact JSON celery-redbeat writes and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = ["POLICY_FIELDS", "EntryDefinition", "EntryMeta", "EntryPolicy"]


@attrs.frozen
class EntryDefinition:
    """What to run and when: the ``definition`` field of an entry's hash.

    ``schedule`` is a Celery schedule object (``celery.schedules.schedule``, ``crontab``,
    ``solar``, or :mod:`redbeat_core.schedules`' ``rrule`` and ``clocked``, or a type a plugin
    registered with the codec). ``args`` is kept as given: JSON has no tuples, so it comes back
    from storage as a list, or as ``None`` when celery-redbeat stored ``null`` (it does that for
    entries created without ``args``); Celery treats ``None`` as no arguments.
    """

    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    task: str = attrs.field(validator=attrs.validators.instance_of(str))
    schedule: Any
    args: Any = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    options: Mapping[str, Any] = attrs.field(factory=dict)
    enabled: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


@attrs.frozen
class EntryMeta:
    """The run state of an entry: the ``meta`` field of its hash.

    ``last_run_at`` is ``None`` when the entry never ran.
    """

    last_run_at: datetime | None = None
    total_run_count: int = 0


def _no_field_names(instance: EntryPolicy, attribute: attrs.Attribute[Any], value: Any) -> None:
    clashes = sorted(set(value) & {a.name for a in attrs.fields(EntryPolicy)} - {"extra"})
    if clashes:
        msg = f"EntryPolicy.extra must not hold known setting names: {', '.join(clashes)}"
        raise ValueError(msg)


def _aware_to_unix(value: Any) -> Any:
    """An aware datetime as Unix seconds; anything else as given (checked when stored)."""
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value.timestamp()
    return value


def _list_to_tuple(value: Any) -> Any:
    """A list as a tuple (the policy is frozen, and compares equal however it was given)."""
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen
class EntryPolicy:
    """RedBeat's own per-entry settings: the ``policy`` field of an entry's hash.

    Kept out of ``definition`` and ``meta`` because celery-redbeat would crash on unknown keys
    there. Every field defaults to None ("not set": the app-wide default applies), so an entry
    without a policy behaves exactly as Celery's. ``extra`` holds the keys this version does
    not know (written by a newer RedBeat or a plugin): they are kept as they are and written
    back, never dropped.
    """

    #: Set while the entry is paused (out of the schedule, kept): why, who, when (Unix s).
    paused_reason: str | None = None
    paused_by: str | None = None
    paused_at: float | None = None
    #: Scheduling policies (:mod:`redbeat_core.policy`); None: the app-wide default.
    #: After missed due times: ``"run_once"`` (Celery's), ``"skip"`` or ``"run_all"``.
    misfire: str | None = None
    #: Seconds after its due time a run may still start; later, it is skipped.
    starting_deadline: float | None = None
    #: Most seconds a run is delayed by, the same for every beat (a hash of name and due time).
    jitter: float | None = None
    #: No run before this (Unix seconds; an aware datetime is converted).
    start_at: float | None = attrs.field(default=None, converter=_aware_to_unix)
    #: No run after this: the entry finishes (Unix seconds; an aware datetime is converted).
    end_at: float | None = attrs.field(default=None, converter=_aware_to_unix)
    #: The entry finishes after this many runs.
    max_runs: int | None = None
    #: While its previous run is queued or running: ``"allow"`` (Celery's), ``"skip"`` or
    #: ``"buffer_one"`` (at most one queued behind the running one).
    overlap: str | None = None
    #: The blackout calendars the entry obeys (names in ``redbeat_calendars``); None:
    #: the app's ``redbeat_blackouts``; an empty list: none.
    blackouts: tuple[str, ...] | None = attrs.field(default=None, converter=_list_to_tuple)
    #: A run inside a blackout: ``"skip"`` it or ``"postpone"`` it to the blackout's end.
    blackout_action: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, validator=_no_field_names)


#: The scheduling fields of :class:`EntryPolicy` (every field but the pause and ``extra``), in
#: the order they are stored and shown.
POLICY_FIELDS: tuple[str, ...] = tuple(
    a.name
    for a in attrs.fields(EntryPolicy)
    if a.name not in {"paused_reason", "paused_by", "paused_at", "extra"}
)
