"""Schedules as an operator writes them: seconds, a five-field crontab (``0 3 * * *``) or an
ISO 8601 time for a one-off.

``redbeat add --cron/--at`` and the files ``redbeat apply`` reads share these parsers, so a
crontab means the same thing on the command line and in a file. Each raises ``ValueError``
with what is accepted; the caller says where the text came from (an option, a file's field).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["CRON", "EVERY", "ONCE", "interval_of", "parse_cron", "parse_once"]

#: What a crontab may be, as the error messages say it.
CRON = "five fields, 'minute hour day-of-month month day-of-week' (e.g. '0 3 * * *')"
#: What an interval may be.
EVERY = "a number of seconds, such as 30 or 0.5"
#: What a one-off time may be.
ONCE = "an ISO 8601 time such as 2026-12-24T18:00:00+01:00"


def interval_of(seconds: float) -> Any:
    """Celery's interval of ``seconds``, as an entry builds it from a number (the beat's
    minimum is checked when the entry is)."""
    from celery.schedules import schedule

    try:
        return schedule(run_every=timedelta(seconds=seconds))
    except (OverflowError, ValueError):  # NaN, infinities, beyond a timedelta
        raise ValueError(f"{seconds!r}: {EVERY}") from None


def parse_cron(text: str, tz: str | None = None) -> Any:
    """A Celery ``crontab`` from ``minute hour day-of-month month day-of-week`` (the order of
    crontab(5), not of Celery's keyword arguments), read in the app's time zone; with ``tz``,
    RedBeat's ``crontab`` read in that zone (with its DST policy, docs/policies.md)."""
    from celery.schedules import ParseException, crontab

    from redbeat_core.schedules import crontab as zoned_crontab

    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"{text!r}: {CRON}")
    minute, hour, day_of_month, month, day_of_week = parts
    try:
        if tz is not None:
            return zoned_crontab(minute, hour, day_of_week, day_of_month, month, tz=tz)
        return crontab(minute, hour, day_of_week, day_of_month, month)
    except (ValueError, ParseException) as exc:  # Celery parses each field here
        raise ValueError(f"{text!r}: {exc}; {CRON}") from None


def parse_moment(text: str) -> datetime:
    """The time ``text`` (ISO 8601) as an aware datetime; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r}: {ONCE}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_once(text: str) -> Any:
    """A ``clocked`` one-off at the time ``text``; a time without a zone is UTC."""
    from redbeat_core.schedules import clocked

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r}: {ONCE}") from None
    return clocked(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
