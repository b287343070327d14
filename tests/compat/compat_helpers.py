"""Code that runs in BOTH interpreters: ours, and the celery-redbeat 2.4.2 venv.

It imports neither RedBeat nor celery-redbeat (only Celery and dateutil, which both have), so the
same source describes an entry on either side. ``conftest.py`` loads this file as a module in our
interpreter and prepends its source to every script it runs in the celery-redbeat interpreter.

``describe_entry`` turns an entry into plain JSON values that are equal on both sides exactly
when the entries are: datetimes keep their instant, UTC offset and zone name, schedules their
defining fields, weekdays their ``n``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedule
from dateutil.rrule import weekday

RRULE_FIELDS = (
    "freq",
    "dtstart",
    "interval",
    "wkst",
    "count",
    "until",
    "bysetpos",
    "bymonth",
    "bymonthday",
    "byyearday",
    "byeaster",
    "byweekno",
    "byweekday",
    "byhour",
    "byminute",
    "bysecond",
)


def plain(value: Any) -> Any:
    """``value`` as JSON-able data that compares equal across interpreters."""
    if isinstance(value, datetime):
        tz = value.tzinfo
        return {
            "datetime": value.isoformat(),
            "zone": None if tz is None else getattr(tz, "key", None),
            "offset": None if tz is None else value.utcoffset().total_seconds(),
        }
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, timedelta):
        return {"timedelta": value.total_seconds()}
    if isinstance(value, weekday):
        return {"weekday": value.weekday, "n": value.n}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def describe_schedule(value: Any) -> dict[str, Any]:
    if isinstance(value, crontab):
        return {
            "type": "crontab",
            "minute": str(value._orig_minute),
            "hour": str(value._orig_hour),
            "day_of_week": str(value._orig_day_of_week),
            "day_of_month": str(value._orig_day_of_month),
            "month_of_year": str(value._orig_month_of_year),
        }
    if type(value).__name__ == "rrule" and hasattr(value, "freq"):
        return {"type": "rrule", **{f: plain(getattr(value, f)) for f in RRULE_FIELDS}}
    if isinstance(value, schedule):
        return {
            "type": "interval",
            "every": value.run_every.total_seconds(),
            "relative": bool(value.relative),
        }
    return {"type": type(value).__name__, "repr": repr(value)}


def describe_entry(entry: Any) -> dict[str, Any]:
    """Every stored field of a ``RedBeatSchedulerEntry`` (either project's) as plain data."""
    return {
        "name": entry.name,
        "task": entry.task,
        # JSON has no tuples, and celery-redbeat stores ``null`` for "no args": both mean none.
        "args": plain(list(entry.args or ())),
        "kwargs": plain(dict(entry.kwargs or {})),
        "options": plain(dict(entry.options or {})),
        "enabled": bool(entry.enabled),
        "schedule": describe_schedule(entry.schedule),
        "last_run_at": plain(entry.last_run_at),
        "total_run_count": entry.total_run_count or 0,
    }


def static_schedule(far_hour: int) -> dict[str, Any]:
    """The ``beat_schedule`` both beats are configured with (as in a rolling migration).

    ``static-fast`` comes due a second after it is synced; ``static-cron`` runs at
    ``far_hour`` (about 12 hours away), so it is never due during a test.
    """
    return {
        "static-fast": {"task": "tasks.static_fast", "schedule": 1.0, "args": (1, 2)},
        "static-cron": {
            "task": "tasks.static_cron",
            "schedule": crontab(minute="7", hour=str(far_hour)),
            "kwargs": {"k": "v"},
            "options": {"queue": "beat"},
        },
    }
