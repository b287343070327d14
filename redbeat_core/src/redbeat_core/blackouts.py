"""Blackout calendars: named spans of time in which the entries that name them do not run.

A calendar is declared in the ``redbeat_calendars`` setting, by name, with any of:

- ``cron``: crontab expressions (``"MIN HOUR DAY MONTH WEEKDAY"``, one or a list); every minute
  an expression matches is blacked out (``"* 22-23,0-5 * * *"`` is every night from 22:00 to
  06:00, ``"* * * * 6,0"`` every weekend). Fields are Celery's crontab fields, read the way
  Celery reads them (day of month *and* day of week must both match);
- ``between``: date ranges, ``[start, end]`` pairs of ISO 8601 times (the start inside, the
  end not);
- ``tz``: the time zone both are read in (a tz database name; default UTC), wall-clock time
  across daylight-saving changes.

Calendars can also be stored, by name, with the schedule (``Schedule.set_calendar``,
``redbeat calendar set``), so an operator can declare a freeze without a deploy: a store that is
a :class:`CalendarStore` keeps them, and a beat reads them again at most every
:data:`STORED_REFRESH` seconds, only when an entry names a calendar the settings do not declare.
A name declared in the settings is the settings' (a stored one of that name is refused).

Entries name the calendars they obey in their policy (``blackouts``), or get the app-wide
``redbeat_blackouts``; a run that would be published inside one is skipped, or postponed to the
end of the blackout (``blackout_action``). Everything here is pure: the functions take the
instant they judge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from celery.schedules import crontab

from redbeat_core.settings import InvalidValue

__all__ = [
    "STORED_REFRESH",
    "Calendar",
    "CalendarStore",
    "calendar_json",
    "parse_calendars",
    "parse_stored",
]

logger = logging.getLogger("celery.beat")

#: Seconds a beat keeps the stored calendars it read before reading them again.
STORED_REFRESH: Final = 30.0
#: How far ahead the end of a blackout is looked for (a calendar that blacks out more than
#: this in one stretch has its runs skipped instead of postponed).
MAX_BLACKOUT: Final = timedelta(days=8)
_MINUTE: Final = 60.0
_ACCEPTED: Final = (
    "a dict of calendars by name, each a dict with 'cron' (a crontab expression 'MIN HOUR DAY "
    "MONTH WEEKDAY', or a list of them), 'between' (a list of [start, end] ISO 8601 times) "
    "and 'tz' (a time zone name, default UTC)"
)


@attrs.frozen
class Calendar:
    """One named blackout calendar (see the module's docstring)."""

    name: str
    zone: tzinfo = UTC
    crons: tuple[tuple[str, crontab], ...] = ()
    ranges: tuple[tuple[float, float], ...] = ()
    #: The calendar as it was written (for listing it).
    spec: Mapping[str, Any] = attrs.field(factory=dict, eq=False)

    def covering(self, instant: float) -> str | None:
        """What of the calendar ``instant`` (Unix seconds) falls in, in words, or None."""
        for start, end in self.ranges:
            if start <= instant < end:
                return f"between {_iso(start, self.zone)} and {_iso(end, self.zone)}"
        moment = datetime.fromtimestamp(instant, self.zone)
        for text, cron in self.crons:
            if _matches(cron, moment):
                return f"cron {text!r}"
        return None

    def end_after(self, instant: float) -> float | None:
        """The first instant from ``instant`` on that the calendar does not cover; None when
        it covers everything for :data:`MAX_BLACKOUT`."""
        limit = instant + MAX_BLACKOUT.total_seconds()
        moment = instant
        while moment < limit:
            inside = next((end for start, end in self.ranges if start <= moment < end), None)
            if inside is not None:
                moment = inside
                continue
            local = datetime.fromtimestamp(moment, self.zone)
            if not any(_matches(cron, local) for _, cron in self.crons):
                return moment
            moment = (local.replace(second=0, microsecond=0) + timedelta(minutes=1)).timestamp()
        return None

    def describe(self) -> str:
        parts = [f"cron {text!r}" for text, _ in self.crons]
        parts += [f"{_iso(s, self.zone)} to {_iso(e, self.zone)}" for s, e in self.ranges]
        return f"{', '.join(parts)} ({self.zone})"


def _matches(cron: crontab, moment: datetime) -> bool:
    return (
        moment.minute in cron.minute
        and moment.hour in cron.hour
        and moment.isoweekday() % 7 in cron.day_of_week
        and moment.day in cron.day_of_month
        and moment.month in cron.month_of_year
    )


def _iso(seconds: float, zone: tzinfo) -> str:
    return datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%d %H:%M")


@runtime_checkable
class CalendarStore(Protocol):
    """A store that keeps blackout calendars with the schedule (optional capability)."""

    def stored_calendars(self) -> dict[str, str]:
        """Every stored calendar: name -> its JSON spec."""
        ...

    def store_calendar(self, name: str, spec: str | None) -> None:
        """Store the calendar ``name`` (its JSON spec), or delete it (``None``)."""
        ...


def calendar_json(name: str, spec: Any) -> str:
    """``spec`` checked (``ValueError`` saying what is wrong) and as stored: JSON, times as
    ISO 8601 text."""
    _calendar(name, spec)
    return json.dumps(dict(spec), default=lambda v: v.isoformat() if isinstance(v, datetime) else v)


def parse_stored(stored: Mapping[str, str]) -> dict[str, Calendar]:
    """The stored calendars that can be read; one that cannot (written by hand, by a newer
    version) is left out with an error naming it: its entries then run through it."""
    calendars: dict[str, Calendar] = {}
    for name, text in stored.items():
        try:
            calendars[name] = _calendar(name, json.loads(text))
        except ValueError as exc:  # json's errors are ValueErrors too
            logger.error(
                "beat: the stored blackout calendar %r cannot be read (%s); it blacks out "
                "nothing. Store it again with `redbeat calendar set %s ...`",
                name,
                exc,
                name,
            )
    return calendars


def parse_calendars(value: Any) -> dict[str, Calendar]:
    """The ``redbeat_calendars`` setting, checked. Raises ``InvalidValue`` naming the
    calendar and what is wrong."""
    if not isinstance(value, Mapping):
        raise InvalidValue(_ACCEPTED)
    calendars: dict[str, Calendar] = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidValue("calendar names are non-empty strings", key=str(name), value=spec)
        try:
            calendars[name] = _calendar(name, spec)
        except ValueError as exc:
            raise InvalidValue(f"{exc}; {_ACCEPTED}", key=name, value=spec) from None
    return calendars


def _calendar(name: str, spec: Any) -> Calendar:
    if not isinstance(spec, Mapping):
        raise ValueError("a calendar is a dict")
    unknown = sorted(set(spec) - {"cron", "between", "tz"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}")
    zone = _zone(spec.get("tz", "UTC"))
    crons = spec.get("cron", ())
    if isinstance(crons, str):
        crons = [crons]
    if not isinstance(crons, Sequence):
        raise ValueError("'cron' is a crontab expression or a list of them")
    parsed = tuple((text, _cron(text)) for text in crons)
    ranges = tuple(_range(pair, zone) for pair in spec.get("between", ()))
    if not parsed and not ranges:
        raise ValueError("a calendar needs 'cron' or 'between'")
    return Calendar(name, zone, parsed, ranges, dict(spec))


def _zone(text: Any) -> tzinfo:
    if not isinstance(text, str):
        raise ValueError(f"'tz' is a time zone name such as 'Europe/Paris', got {text!r}")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r}") from None


def _cron(text: Any) -> crontab:
    if not isinstance(text, str) or len(text.split()) != 5:
        raise ValueError(f"{text!r} is not a crontab expression 'MIN HOUR DAY MONTH WEEKDAY'")
    minute, hour, day, month, weekday = text.split()
    try:
        return crontab(minute, hour, weekday, day, month)
    except Exception as exc:  # Celery's parser raises ValueError or pyparsing's errors
        raise ValueError(f"{text!r}: {exc}") from None


def _range(pair: Any, zone: tzinfo) -> tuple[float, float]:
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        raise ValueError(f"'between' holds [start, end] pairs, got {pair!r}")
    start, end = (_moment(item, zone) for item in pair)
    if end <= start:
        raise ValueError(f"{pair!r} ends before it starts")
    return start, end


def _moment(item: Any, zone: tzinfo) -> float:
    if isinstance(item, datetime):
        moment = item
    elif isinstance(item, str):
        try:
            moment = datetime.fromisoformat(item)
        except ValueError:
            raise ValueError(f"{item!r} is not an ISO 8601 time") from None
    else:
        raise ValueError(f"{item!r} is not an ISO 8601 time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)  # wall-clock time in the calendar's zone
    return moment.timestamp()
