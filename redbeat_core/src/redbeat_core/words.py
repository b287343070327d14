"""A schedule in words, for people: ``every 30 seconds``, ``at 03:00 every day``; and how far
a moment is from now (``in 3 min``).

Listings, ``show`` and the dashboard print these next to the exact next run times; a schedule
RedBeat does not know is shown by its ``repr``, which is what Celery itself prints.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedule, solar

from redbeat_core.schedules import clocked, rrule
from redbeat_core.schedules import crontab as zoned_crontab

__all__ = ["describe_schedule", "relative"]


def describe_schedule(value: Any) -> str:
    """``value`` (any Celery schedule) in a few words."""
    if isinstance(value, clocked):
        return f"once at {_moment(value.clocked_time)}"
    if isinstance(value, rrule):
        return f"rrule {value.rrule}".replace("\n", " ")
    if isinstance(value, crontab):
        return _crontab(value, _zone(value))
    if isinstance(value, solar):
        return f"solar {value.event} at {value.lat:g}, {value.lon:g}"
    if isinstance(value, schedule):
        every = _interval(value.run_every.total_seconds())
        return every + (" (relative)" if value.relative else "")
    return repr(value)


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def _interval(seconds: float) -> str:
    """``every 30 seconds``, ``every hour``, ``every 90 minutes``, ``every 0.5 seconds``."""
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    if seconds == 1:
        return "every second"
    return f"every {seconds:g} seconds"


def _crontab(value: crontab, where: str = "") -> str:
    """``at 03:00 every day (crontab 0 3 * * *)``; ``where`` (such as " in Europe/London")
    follows the time."""
    fields = [
        value._orig_minute,
        value._orig_hour,
        value._orig_day_of_month,
        value._orig_month_of_year,
        value._orig_day_of_week,
    ]
    text = " ".join(str(field) for field in fields)
    minute, hour = (str(fields[0]), str(fields[1]))
    if fields[2:] == ["*", "*", "*"] and minute.isdigit() and hour.isdigit():
        return f"at {int(hour):02d}:{int(minute):02d} every day{where} (crontab {text})"
    return f"crontab {text}{where}"


def _zone(value: crontab) -> str:
    """The words after the time for RedBeat's crontab, which has a zone of its own (such as
    " in Europe/London"); nothing for Celery's."""
    if not isinstance(value, zoned_crontab):
        return ""
    return " in " + (value.zone or "the app's time zone")


def _moment(value: datetime | timedelta | Any) -> str:
    """``2030-01-01 09:00:00 UTC`` (a naive time is UTC, as ``clocked`` reads it)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return f"{aware:%Y-%m-%d %H:%M:%S} {aware.tzname() or ''}".rstrip()
    return str(value)


def relative(delta: timedelta) -> str:
    """``in 3 min``, ``12 s ago``: how far ``delta`` (a moment minus now) is from now."""
    seconds = delta.total_seconds()
    ahead = seconds >= 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 86400:
        text = f"{seconds / 3600:.1f} h"
    elif seconds < 365 * 86400:
        text = f"{seconds / 86400:.1f} d"
    else:
        text = f"{seconds / (365.25 * 86400):.1f} y"
    return f"in {text}" if ahead else f"{text} ago"
