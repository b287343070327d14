"""What the entry API accepts: each check raises :class:`InvalidEntryError` naming the entry, the
field, the value and what is accepted.

Where each check runs is chosen for celery-redbeat's API and for the tick's cost:

- **Building an entry** (``RedBeatSchedulerEntry(...)``) checks only the schedule, because
  Celery converts it there (a number or a ``timedelta`` becomes an interval) and fails with a
  raw ``AttributeError`` or ``OverflowError`` on a value it cannot hold
  (:func:`check_schedule_type`). Nothing else: celery-redbeat code builds an entry and sets its
  attributes before saving it (``entry.enabled = False``), Celery rebuilds entries through the
  constructor, and the tick builds a thousand entries from stored data.
- **Storing an entry** (``save()``, ``update_from_dict``, the start-up sync of
  ``beat_schedule``) checks every field (:func:`check_entry`); a value the codec cannot write
  as JSON is named by :func:`unencodable` when the encoding fails, so a valid entry is encoded
  once, as before.
- **Running a stored entry**: the codec refuses what it cannot read, and the tick refuses an
  interval that would run in a loop (:func:`check_interval`, from the entry's ``is_due``): a
  celery-redbeat beat or a script may have stored one. That entry is quarantined with the
  reason, and ``from_key`` still loads it, so it can be fixed and saved again.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs
from celery.schedules import BaseSchedule
from celery.schedules import schedule as interval

from redbeat_core.codec import UnencodableError
from redbeat_core.exceptions import InvalidEntryError, RedBeatError
from redbeat_core.model import POLICY_FIELDS, EntryDefinition, EntryPolicy
from redbeat_core.policy import policy_problem

if TYPE_CHECKING:
    from redbeat_core.codec import Codec
    from redbeat_core.config import RedBeatConfig
    from redbeat_core.entry import RedBeatSchedulerEntry

__all__ = [
    "check_entry",
    "check_interval",
    "check_name",
    "check_policy",
    "check_schedule_type",
    "policy_from_mapping",
    "unencodable",
]

#: ``relative=True`` rounds a due time down to the whole second (minute, hour, day) of the
#: interval: below one second the rounded due time never moves past the last run, so the entry
#: is due again at once, in a loop (Celery 5.7's ``remaining`` answers 0 every time).
MIN_RELATIVE_INTERVAL: Final = timedelta(seconds=1)

NAME: Final = "a non-empty string not starting with ':' (RedBeat's own keys are '<prefix>:...')"
TASK: Final = "the task's name, a non-empty string such as 'proj.tasks.add'"
SCHEDULE: Final = (
    "a Celery schedule (celery.schedules.schedule, crontab or solar; redbeat.schedules.rrule, "
    "clocked or crontab; or an object with is_due() and remaining_estimate()), or a finite "
    "number of seconds or a timedelta for an interval"
)
ARGS: Final = "a list or tuple of positional arguments, or None for none"
MAPPING: Final = "a dict with string keys, or None for none"
ENABLED: Final = "True or False"
POLICY: Final = (
    "an EntryPolicy (or a dict of its fields: misfire, starting_deadline, jitter, start_at, "
    "end_at, max_runs, overlap, blackouts, blackout_action), or None to keep the stored one"
)
LAST_RUN_AT: Final = "a datetime, or None for an entry that never ran"
RUN_COUNT: Final = "a whole number >= 0"
JSON: Final = (
    "values RedBeat can store as JSON: str, int, float, bool, None, lists and tuples, dicts "
    "with string keys, datetimes, schedules (and types a plugin registered with the codec)"
)


def check_name(name: object, config: RedBeatConfig) -> str:
    """``name`` if it can name a stored entry: its key must not be one of RedBeat's own keys
    (an entry named ``:schedule`` would overwrite the schedule itself)."""
    if not isinstance(name, str) or not name or name.startswith(":"):
        raise InvalidEntryError(name, "name", name, NAME)
    lock_key = config.lock_key
    if lock_key is not None:
        key = config.key_for(name)
        if key == lock_key or key.startswith(lock_key + ":"):
            accepted = f"{NAME}; the key {key!r} is the beat lock's (redbeat_lock_key)"
            raise InvalidEntryError(name, "name", name, accepted)
    return name


def _is_schedule_object(value: object) -> bool:
    return callable(getattr(value, "is_due", None)) and callable(
        getattr(value, "remaining_estimate", None)
    )


def check_schedule_type(name: object, schedule: object) -> None:
    """Refuse a schedule that Celery's ``ScheduleEntry`` cannot hold: it calls
    ``maybe_schedule``, which turns a number into ``timedelta(seconds=...)`` (NaN, infinities and
    huge numbers fail there) and sets ``.app`` on anything else (a string fails there).
    ``None`` passes: an entry may get its schedule after it is built."""
    if schedule is None or isinstance(schedule, BaseSchedule | timedelta):
        return
    if isinstance(schedule, int | float) and not isinstance(schedule, bool):
        try:
            timedelta(seconds=schedule)
        except (OverflowError, ValueError):
            raise InvalidEntryError(name, "schedule", schedule, SCHEDULE) from None
        return
    if not _is_schedule_object(schedule):
        raise InvalidEntryError(name, "schedule", schedule, SCHEDULE)


def check_interval(name: object, schedule: interval, min_interval: float) -> None:
    """Refuse an interval that the beat would run in a loop: shorter than ``min_interval``
    (zero and negative ones are due again at once), or under a second with ``relative=True``.
    Cheap (the tick calls it for every due interval entry)."""
    every = schedule.run_every
    seconds = every.total_seconds()
    if seconds < min_interval:
        raise InvalidEntryError(
            name,
            "schedule",
            schedule,
            f"an interval must be at least {min_interval:g} s (redbeat_min_interval): a "
            "shorter one is due again as soon as it has run and would be published in a loop. "
            "Use a longer interval, or lower redbeat_min_interval if the beat must run it "
            "this often",
            shown=f"every {seconds:g} s",
        )
    if schedule.relative and every < MIN_RELATIVE_INTERVAL:
        raise InvalidEntryError(
            name,
            "schedule",
            schedule,
            "relative=True rounds each due time down to the whole second (minute, hour, day), "
            "so an interval under 1 s is due again as soon as it has run, in a loop. Use "
            "relative=False, or an interval of at least 1 s",
            shown=f"every {seconds:g} s with relative=True",
        )


def _check_mapping(name: str, field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise InvalidEntryError(name, field, value, MAPPING)
    for key in value:
        if not isinstance(key, str):
            accepted = f"{MAPPING} (the key {key!r} is not a string)"
            raise InvalidEntryError(name, field, value, accepted)


def check_entry(entry: RedBeatSchedulerEntry, config: RedBeatConfig) -> None:
    """Every field of ``entry`` that storing it depends on; see the module's docstring. What
    the codec cannot encode is found when it is encoded (:func:`unencodable`)."""
    name = check_name(entry.name, config)
    task = entry.task
    if not isinstance(task, str) or not task:
        raise InvalidEntryError(name, "task", task, TASK)
    schedule = entry.schedule
    if not isinstance(schedule, BaseSchedule) and not _is_schedule_object(schedule):
        accepted = SCHEDULE
        if isinstance(schedule, int | float | timedelta) and not isinstance(schedule, bool):
            accepted = (
                "a schedule object: a number of seconds or a timedelta becomes an interval "
                "only when given to the constructor; assign celery.schedules.schedule(...) "
                "to the attribute"
            )
        raise InvalidEntryError(name, "schedule", schedule, accepted)
    if isinstance(schedule, interval):
        check_interval(name, schedule, config.min_interval)
    args = entry.args
    if args is not None and not isinstance(args, list | tuple):
        raise InvalidEntryError(name, "args", args, ARGS)
    _check_mapping(name, "kwargs", entry.kwargs)
    _check_mapping(name, "options", entry.options)
    if not isinstance(entry.enabled, bool):
        raise InvalidEntryError(name, "enabled", entry.enabled, ENABLED)
    if entry.policy is not None:
        check_policy(name, entry.policy)
        _check_calendars(name, entry.policy.blackouts, config)
    if entry.last_run_at is not None and not isinstance(entry.last_run_at, datetime):
        raise InvalidEntryError(name, "last_run_at", entry.last_run_at, LAST_RUN_AT)
    count = entry.total_run_count
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InvalidEntryError(name, "total_run_count", count, RUN_COUNT)


def check_policy(name: str, policy: object) -> None:
    """Each scheduling setting of ``policy`` (see :mod:`redbeat_core.policy`), named
    ``policy.<field>`` in the error."""
    if not isinstance(policy, EntryPolicy):
        raise InvalidEntryError(name, "policy", policy, POLICY)
    for field in POLICY_FIELDS:
        value = getattr(policy, field)
        accepted = policy_problem(field, value)
        if accepted is not None:
            raise InvalidEntryError(name, f"policy.{field}", value, accepted)
    start, end = policy.start_at, policy.end_at
    if start is not None and end is not None and end <= start:
        raise InvalidEntryError(
            name, "policy.end_at", policy.end_at, "a time after policy.start_at"
        )


def _check_calendars(name: str, blackouts: Any, config: RedBeatConfig) -> None:
    """Refuse a blackout calendar the app does not declare: a misspelled name would leave the
    entry running through its blackout."""
    if not blackouts:
        return
    declared = set(config.settings.get("redbeat_calendars") or {})
    unknown = [calendar for calendar in blackouts if calendar not in declared]
    if unknown and config.app is not None:  # stored calendars: one read, only for these
        from redbeat_core.blackouts import CalendarStore
        from redbeat_core.runtime import get_runtime

        try:
            store = get_runtime(config.app).store
            stored = set(store.stored_calendars()) if isinstance(store, CalendarStore) else set()
        except RedBeatError:  # no storage to ask: the names must be declared
            stored = set()
        declared |= stored
        unknown = [calendar for calendar in unknown if calendar not in declared]
    if unknown:
        known = ", ".join(sorted(declared)) or "none are declared"
        accepted = f"names of calendars in redbeat_calendars or stored ({known})"
        raise InvalidEntryError(name, "policy.blackouts", unknown[0], accepted)


def policy_from_mapping(name: object, values: Mapping[str, Any]) -> EntryPolicy:
    """An :class:`EntryPolicy` from a dict of its fields (``beat_schedule`` entries and
    ``apply`` files write it so); an unknown field is refused with the closest known one."""
    known = [a.name for a in attrs.fields(EntryPolicy) if a.name != "extra"]
    for field in values:
        if field not in known:
            close = difflib.get_close_matches(str(field), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidEntryError(
                name,
                f"policy.{field}",
                values[field],
                f"one of the fields {', '.join(known)}{hint}",
            )
    return EntryPolicy(**dict(values))


def unencodable(
    codec: Codec, definition: EntryDefinition, policy: EntryPolicy | None, error: Exception
) -> InvalidEntryError:
    """The error for an entry the codec failed to encode (``error``), naming the field that
    holds the value it cannot write. Called only once encoding failed: a valid entry is
    encoded once."""
    fields: dict[str, Any] = {
        "args": definition.args,
        "kwargs": dict(definition.kwargs),
        "options": dict(definition.options),
        "schedule": definition.schedule,
    }
    if policy is not None:
        fields["policy"] = policy
    for field, value in fields.items():
        try:
            codec.dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            return InvalidEntryError(definition.name, field, value, f"{JSON} ({_why(exc)})")
    return InvalidEntryError(definition.name, "definition", definition, f"{JSON} ({_why(error)})")


def _why(exc: BaseException) -> str:
    if isinstance(exc, UnencodableError):
        kind = type(exc.value)
        return f"found {kind.__module__}.{kind.__qualname__} {_REPR.repr(exc.value)}"
    return " ".join(str(exc).split()) or type(exc).__name__


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
