"""Daily blackout windows such as ``"22:00-06:00"``: parsing, and where an instant falls.

A window is a span of wall-clock time repeated every day in one time zone: its start is inside,
its end is not (``"22:00-06:00"`` blacks out 22:00:00 up to 05:59:59.999). A start later than
the end crosses midnight. Wall-clock time is what an operator means by "22:00", so across a
daylight-saving change a window follows the clock on the wall: it is an hour shorter or longer
that night, and a window lying inside the skipped hour does not happen that day.

Every function here takes the instant it judges (Unix seconds) and the time zone explicitly,
and reads no clock: they are tested with chosen instants, and the plugin passes the tick's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

__all__ = ["DAY", "Window", "blackout_end", "covers_whole_day", "parse_window", "window_at"]

#: Seconds in a day on the wall clock; a window's end may be ``DAY`` (written ``24:00``).
DAY: Final = 86_400

_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_WINDOW = re.compile(rf"\s*{_TIME}\s*-\s*{_TIME}\s*")


@dataclass(frozen=True)
class Window:
    """A daily span of wall-clock time, in seconds after midnight.

    :ivar start: the first second inside, 0 to ``DAY - 1``.
    :ivar end: the first second after, 1 to ``DAY``; never equal to ``start``. Smaller than
        ``start`` when the window crosses midnight.
    """

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def contains(self, second: float) -> bool:
        """Whether ``second`` (seconds after midnight, wall clock) is inside the window."""
        if self.crosses_midnight:
            return second >= self.start or second < self.end
        return self.start <= second < self.end

    def __str__(self) -> str:
        return f"{_format(self.start)}-{_format(self.end)}"


def _format(second: int) -> str:
    hours, rest = divmod(second, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")


def _second(hours: str, minutes: str, seconds: str | None, *, end: bool) -> int | None:
    """Seconds after midnight for a written time, or None when it is not a time of day
    (``24:00`` is one only as an end: the window runs to midnight)."""
    h, m, s = int(hours), int(minutes), int(seconds or 0)
    if end and (h, m, s) == (24, 0, 0):
        return DAY
    if h > 23 or m > 59 or s > 59:
        return None
    return h * 3600 + m * 60 + s


def parse_window(text: str) -> Window:
    """``"HH:MM-HH:MM"`` (seconds optional: ``"HH:MM:SS"``) as a :class:`Window`.

    :raises ValueError: saying what is wrong with ``text``, for the setting's error.
    """
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not start-end")
    start = _second(*match.group(1, 2, 3), end=False)
    end = _second(*match.group(4, 5, 6), end=True)
    if start is None or end is None:
        raise ValueError(f"{text!r} has a time that is not a time of day")
    if start == end:
        raise ValueError(f"{text!r} is empty (write 00:00-24:00 for a whole day)")
    return Window(start, end)


def _second_of_day(moment: datetime) -> float:
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def window_at(windows: Sequence[Window], instant: float, zone: tzinfo) -> Window | None:
    """The first of ``windows`` that ``instant`` (Unix seconds) falls in, in ``zone``."""
    second = _second_of_day(datetime.fromtimestamp(instant, zone))
    return next((window for window in windows if window.contains(second)), None)


def _wall(day: date, second: int, zone: tzinfo) -> float:
    """Unix seconds of wall-clock ``second`` after midnight of ``day`` in ``zone``
    (``DAY`` is the next midnight)."""
    midnight = datetime.combine(day, time(), tzinfo=zone)
    return (midnight + timedelta(seconds=second)).timestamp()  # wall-clock arithmetic


def _end_after(window: Window, instant: float, zone: tzinfo) -> float:
    """The first end of ``window`` after ``instant``: today's, or tomorrow's when today's has
    passed (a window crossing midnight, entered in the evening)."""
    today = datetime.fromtimestamp(instant, zone).date()
    end = _wall(today, window.end, zone)
    return end if end > instant else _wall(today + timedelta(days=1), window.end, zone)


def blackout_end(windows: Sequence[Window], instant: float, zone: tzinfo) -> float:
    """When the blackout that ``instant`` falls in ends, Unix seconds (``instant`` itself when
    it falls in none). Windows that overlap or touch (``"22:00-23:00"``, ``"23:00-01:00"``)
    make one blackout: a run postponed to the end of the first would only be postponed again.

    Each step leaves one window, so ``len(windows)`` steps reach the end unless the windows
    cover the whole day (see :func:`covers_whole_day`, which the settings refuse then).
    """
    end = instant
    for _ in range(len(windows)):
        window = window_at(windows, end, zone)
        if window is None:
            break
        end = _end_after(window, end, zone)
    return end


def covers_whole_day(windows: Sequence[Window]) -> bool:
    """Whether every second of the day is in some window: a postponed run would never run."""
    spans = sorted(
        span
        for window in windows
        for span in (
            ((window.start, DAY), (0, window.end))
            if window.crosses_midnight
            else ((window.start, window.end),)
        )
    )
    reached = 0
    for start, end in spans:
        if start > reached:
            return False
        reached = max(reached, end)
    return reached >= DAY
