"""Wall-clock times in a time zone, and the one instant each of them runs at.

A crontab matches wall-clock times ("02:30 every day"); a beat runs at instants. Most wall-clock
times name exactly one instant, but a daylight-saving change (or any change of a zone's UTC
offset in the tz database) breaks that twice a year:

- spring forward: the clock jumps, say from 02:00 to 03:00; 02:30 never happens that day (a
  *gap*). Such a time runs at the first instant that exists after the gap: the change itself
  (03:00, new time). Every time of the gap runs there, so they become one run.
- fall back: the clock goes back, say from 02:00 to 01:00; 01:30 happens twice (a *repeat*).
  Such a time runs at its first occurrence only (01:30, summer time).

:func:`run_instant` is that policy, for any :class:`zoneinfo.ZoneInfo` (or other PEP 495 time
zone); nothing here knows a zone's rules but the tz database.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["run_instant", "wall_clock", "zone_named"]


@functools.lru_cache(maxsize=128)
def zone_named(name: str) -> ZoneInfo:
    """The tz database zone ``name`` (``"Europe/London"``). Raises ``ValueError`` for a name the
    tz database of this host does not have."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"unknown time zone {name!r}: use a tz database name such as 'Europe/London'"
        raise ValueError(msg) from exc


def wall_clock(moment: datetime, tz: tzinfo) -> datetime:
    """The naive wall-clock time ``tz`` shows at the aware instant ``moment``."""
    return moment.astimezone(tz).replace(tzinfo=None)


def run_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The instant (aware, UTC) at which the naive wall-clock time ``wall`` in ``tz`` runs: the
    instant it names; for a repeated time its first occurrence; for a time in a gap the end of
    the gap (the instant of the change).

    Never decreasing: a later wall-clock time never runs at an earlier instant."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if wall_clock(first, tz) == wall.replace(tzinfo=None):
        return first  # it exists (fold=0: the first of two occurrences)
    # In a gap. PEP 495: fold=0 reads it with the offset before the change, which puts it
    # after the change; fold=1 with the offset after, which puts it before. The change lies
    # between the two.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return _change_between(before, first, tz)


def _change_between(before: datetime, after: datetime, tz: tzinfo) -> datetime:
    """The first instant in ``(before, after]`` whose UTC offset differs from ``before``'s: the
    change of offset. The tz database changes offsets on whole seconds."""
    old = before.astimezone(tz).utcoffset()
    low = math.floor(before.timestamp())  # has the old offset
    high = math.ceil(after.timestamp())  # has the new one
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(middle, tz) == old:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _offset(seconds: int, tz: tzinfo) -> timedelta | None:
    return datetime.fromtimestamp(seconds, UTC).astimezone(tz).utcoffset()
