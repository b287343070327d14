"""Schedules that Celery does not ship: ``rrule`` (from celery-redbeat) and ``clocked``, and
``crontab``, Celery's crontab with a time zone of its own that runs once per wall-clock match
across daylight-saving changes (see ``docs/policies.md``, "Time zones and DST").

``solar`` is Celery's own :class:`celery.schedules.solar`, re-exported so that every schedule
RedBeat stores can be imported from here.

Contract with the scheduler: Celery's ``ScheduleEntry`` replaces a missing ``last_run_at`` with
*now*, which for a one-off schedule means "already ran". RedBeat's scheduler instead passes the
stored ``last_run_at`` to :meth:`~celery.schedules.BaseSchedule.is_due` and
``remaining_estimate``: ``None`` when the entry never ran. Both schedules here accept that.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar, Final
from zoneinfo import ZoneInfo

from celery.schedules import BaseSchedule, schedstate, solar
from celery.schedules import crontab as celery_crontab
from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, SECONDLY, WEEKLY, YEARLY, weekday
from dateutil.rrule import rrule as dateutil_rrule

from redbeat_core.zones import run_instant, wall_clock, zone_named

__all__ = ["clocked", "crontab", "rrule", "solar"]

_Spec = int | Iterable[int] | None
_WeekdaySpec = int | weekday | Iterable[int | weekday] | None


def _state(is_due: bool, next_check: float | None) -> schedstate:
    """``schedstate(is_due, next)``; ``next=None`` means there is no next run."""
    return schedstate(is_due, next_check)  # type: ignore[arg-type,unused-ignore]


def _as_set(value: Any) -> frozenset[Any] | None:
    """An rrule ``by*`` argument as a set: a single value, a list and a tuple mean the same."""
    if value is None:
        return None
    if isinstance(value, int | weekday):
        value = (value,)
    return frozenset(_weekday_key(v) if isinstance(v, weekday) else v for v in value)


#: The period of one step of each frequency that divides time evenly (months and years do not).
_STEP: Final = {
    SECONDLY: timedelta(seconds=1),
    MINUTELY: timedelta(minutes=1),
    HOURLY: timedelta(hours=1),
    DAILY: timedelta(days=1),
    WEEKLY: timedelta(weeks=1),
}
_BY_FIELDS: Final = (
    "bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno", "byweekday",
    "byhour", "byminute", "bysecond",
)  # fmt: skip


#: Longer than any daylight-saving change (an hour almost everywhere, two in a few places).
_DST_MARGIN: Final = timedelta(hours=3)


def _fixed_offset(tz: Any) -> bool:
    """Whether ``tz`` has one UTC offset all year (naive, UTC, a ``timezone``)."""
    return tz is None or isinstance(tz, timezone)


def _wall(moment: datetime, tz: Any) -> datetime:
    """``moment`` as a naive wall-clock time in ``tz``: dateutil steps a rule in wall time."""
    return moment.astimezone(tz).replace(tzinfo=None) if moment.tzinfo else moment


def _weekday_key(day: weekday) -> Any:
    # dateutil treats MO and the integer 0 alike; MO(+1) is the first Monday.
    return day.weekday if day.n is None else (day.weekday, day.n)


# rrule is adapted from celery-redbeat 2.4.2 (redbeat/schedules.py) by Marc Sibson and
# contributors, Apache License 2.0. Same constructor, attributes and timing; added: type hints,
# __eq__, a working __reduce__, None for "never ran", ValueError for an unknown freq name.
class rrule(BaseSchedule):  # type: ignore[misc,unused-ignore]
    """A recurrence rule (RFC 5545, via :class:`dateutil.rrule.rrule`) as a Celery schedule.

    Arguments are those of :class:`dateutil.rrule.rrule`; ``freq`` may also be a name such as
    ``"DAILY"``. ``dtstart`` defaults to now; naive datetimes are taken as UTC. An rrule with no
    occurrence left after the last run is finished: ``remaining_estimate`` returns ``None``.
    """

    RRULE_REPR: ClassVar[str] = (
        "<rrule: freq: {0.freq}, dtstart: {0.dtstart}, interval: {0.interval}, "
        "wkst: {0.wkst}, count: {0.count}, until: {0.until}, bysetpos: {0.bysetpos}, "
        "bymonth: {0.bymonth}, bymonthday: {0.bymonthday}, byyearday: {0.byyearday}, "
        "byeaster: {0.byeaster}, byweekno: {0.byweekno}, byweekday: {0.byweekday}, "
        "byhour: {0.byhour}, byminute: {0.byminute}, bysecond: {0.bysecond}>"
    )

    nowfun: Callable[[], datetime] | None

    FREQ_MAP: ClassVar[dict[str, int]] = {
        "YEARLY": YEARLY,
        "MONTHLY": MONTHLY,
        "WEEKLY": WEEKLY,
        "DAILY": DAILY,
        "HOURLY": HOURLY,
        "MINUTELY": MINUTELY,
        "SECONDLY": SECONDLY,
    }

    def __init__(
        self,
        freq: int | str,
        dtstart: datetime | None = None,
        interval: int = 1,
        wkst: int | weekday | None = None,
        count: int | None = None,
        until: datetime | None = None,
        bysetpos: _Spec = None,
        bymonth: _Spec = None,
        bymonthday: _Spec = None,
        byyearday: _Spec = None,
        byeaster: _Spec = None,
        byweekno: _Spec = None,
        byweekday: _WeekdaySpec = None,
        byhour: _Spec = None,
        byminute: _Spec = None,
        bysecond: _Spec = None,
        *,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        super().__init__(nowfun=nowfun, app=app)
        if isinstance(freq, str):
            try:
                freq = self.FREQ_MAP[freq.upper()]
            except KeyError:
                names = ", ".join(self.FREQ_MAP)
                msg = f"unknown rrule freq {freq!r}: use one of {names} or dateutil's constants"
                raise ValueError(msg) from None

        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            # dateutil steps by ``interval``: 0 never moves (asking for the next occurrence
            # never returns), a negative one fails with an unrelated error.
            msg = f"rrule interval must be a whole number >= 1, got {interval!r}"
            raise ValueError(msg)
        self.freq: int = freq
        self.dtstart: datetime = self.maybe_make_aware(dtstart or self.now())
        self.interval = interval
        self.wkst = wkst
        self.count = count
        self.until: datetime | None = self.maybe_make_aware(until) if until else None
        self.bysetpos = bysetpos
        self.bymonth = bymonth
        self.bymonthday = bymonthday
        self.byyearday = byyearday
        self.byeaster = byeaster
        self.byweekno = byweekno
        self.byweekday = byweekday
        self.byhour = byhour
        self.byminute = byminute
        self.bysecond = bysecond
        self.rrule = dateutil_rrule(
            freq,  # type: ignore[arg-type]  # any int dateutil accepts; it checks the range
            self.dtstart,
            interval,
            wkst,
            count,
            self.until,
            bysetpos,
            bymonth,
            bymonthday,
            byyearday,
            byeaster,
            byweekno,
            byweekday,  # type: ignore[arg-type]  # dateutil also takes a mix of ints and weekdays
            byhour,
            byminute,
            bysecond,
        )

    def _args(self) -> tuple[Any, ...]:
        return (
            self.freq,
            self.dtstart,
            self.interval,
            self.wkst,
            self.count,
            self.until,
            self.bysetpos,
            self.bymonth,
            self.bymonthday,
            self.byyearday,
            self.byeaster,
            self.byweekno,
            self.byweekday,
            self.byhour,
            self.byminute,
            self.bysecond,
        )

    def remaining_estimate(self, last_run_at: datetime | None) -> timedelta | None:  # type: ignore[override,unused-ignore]
        """Time from now until the first occurrence after ``last_run_at``; ``None`` if none.

        ``last_run_at=None`` (never ran) counts from the first occurrence, like celery-redbeat's
        ``datetime(MINYEAR, 1, 2)`` stand-in.
        """
        if last_run_at is None:
            next_run = self.rrule.after(self.dtstart, inc=True)
        else:
            next_run = self.after(self.maybe_make_aware(last_run_at))
        if next_run is None:
            return None
        delta: timedelta = self.maybe_make_aware(next_run) - self.maybe_make_aware(self.now())
        return delta

    def after(self, moment: datetime) -> datetime | None:
        """The first occurrence after ``moment``, or None when the rule has no more.

        dateutil finds it by stepping from ``dtstart``: a ``MINUTELY`` rule that started in 2020
        takes millions of steps (seconds of work per call, every tick), a ``SECONDLY`` one from
        1970 never finishes. For the frequencies that divide time evenly (``SECONDLY`` to
        ``WEEKLY``), a rule that is not counted by position (``bysetpos``) repeats exactly every
        ``interval`` steps, so it is asked from a start moved up to just before ``moment``
        instead: the same occurrences, found in a few steps. With ``count``, the occurrences
        skipped over are counted too, which only works for a rule without ``by*`` filters
        (every step an occurrence); other counted rules are stepped as dateutil does.
        """
        return self._rule_near(moment).after(moment)

    def _rule_near(self, moment: datetime) -> dateutil_rrule:
        """This rule, restarted at the last step at least one whole period before ``moment``
        (itself when that saves nothing or would change the occurrences)."""
        step = _STEP.get(self.freq)
        if step is None or self.bysetpos is not None:
            return self.rrule
        filtered = any(getattr(self, name) is not None for name in _BY_FIELDS)
        if self.count is not None and filtered:
            return self.rrule
        period = step * max(int(self.interval or 1), 1)
        tz = self.dtstart.tzinfo
        # dateutil steps in wall time and compares instants: around a daylight-saving change
        # the two orders differ by up to the change (it even yields the skipped hour's wall
        # times). Stopping that far short of ``moment`` keeps every occurrence it could pick.
        margin = timedelta(0) if _fixed_offset(tz) else _DST_MARGIN
        span = _wall(moment, tz) - _wall(self.dtstart, tz) - margin
        skipped = math.floor(span / period) - 1
        if skipped <= 0:
            return self.rrule
        count = None if self.count is None else self.count - skipped
        if count is not None and count <= 0:
            return self.rrule.replace(count=None, until=self.dtstart - step)  # none left
        return self.rrule.replace(dtstart=self.dtstart + skipped * period, count=count)

    def is_due(self, last_run_at: datetime | None) -> schedstate:  # type: ignore[override,unused-ignore]
        """``(is_due, seconds until the next check)``; ``(False, None)`` once finished."""
        rem_delta = self.remaining_estimate(last_run_at)
        if rem_delta is None:
            return _state(False, None)
        rem: float | None = max(rem_delta.total_seconds(), 0)
        due = rem == 0
        if due:
            rem_delta = self.remaining_estimate(self.now())
            rem = None if rem_delta is None else max(rem_delta.total_seconds(), 0)
        return _state(due, rem)

    def _key(self) -> tuple[Any, ...]:
        wkst = _weekday_key(self.wkst) if isinstance(self.wkst, weekday) else self.wkst
        return (
            self.freq,
            self.dtstart,
            self.interval,
            wkst,
            self.count,
            self.until,
            *(
                _as_set(v)
                for v in (
                    self.bysetpos,
                    self.bymonth,
                    self.bymonthday,
                    self.byyearday,
                    self.byeaster,
                    self.byweekno,
                    self.byweekday,
                    self.byhour,
                    self.byminute,
                    self.bysecond,
                )
            ),
        )

    def __eq__(self, other: object) -> bool:
        """Equal when the rules are: a ``by*`` list, tuple, set or single value compare alike."""
        if not isinstance(other, rrule):
            return NotImplemented
        return self._key() == other._key() and self.nowfun == other.nowfun

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return self.RRULE_REPR.format(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, self._args(), {"nowfun": self.nowfun})


class clocked(BaseSchedule):  # type: ignore[misc,unused-ignore]
    """Run once, at ``clocked_time`` (or as soon as the beat sees it if that time has passed).

    "Ran" means ``last_run_at`` is at or after ``clocked_time``; ``None`` (never ran) and any
    earlier time mean "not yet". Once it ran, :meth:`remaining_estimate` returns ``None`` and
    :meth:`is_due` ``(False, None)``: the scheduler treats the entry as finished. A naive
    ``clocked_time`` is taken as UTC (as naive datetimes are stored).

    With Celery's own ``ScheduleEntry``, which sets a missing ``last_run_at`` to now, a
    ``clocked_time`` already in the past counts as "ran"; RedBeat's scheduler passes ``None``.
    """

    nowfun: Callable[[], datetime] | None

    def __init__(
        self,
        clocked_time: datetime,
        *,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        if not isinstance(clocked_time, datetime):  # for untyped callers
            msg = f"clocked_time must be a datetime, got {type(clocked_time).__name__}"  # type: ignore[unreachable]
            raise TypeError(msg)
        super().__init__(nowfun=nowfun, app=app)
        self.clocked_time = clocked_time

    def _ran(self, last_run_at: datetime | None) -> bool:
        if last_run_at is None:
            return False
        return bool(self.maybe_make_aware(last_run_at) >= self.maybe_make_aware(self.clocked_time))

    def remaining_estimate(self, last_run_at: datetime | None) -> timedelta | None:  # type: ignore[override,unused-ignore]
        """Time from now until ``clocked_time`` (negative when overdue); ``None`` once it ran."""
        if self._ran(last_run_at):
            return None
        delta: timedelta = self.maybe_make_aware(self.clocked_time) - self.maybe_make_aware(
            self.now()
        )
        return delta

    def is_due(self, last_run_at: datetime | None) -> schedstate:  # type: ignore[override,unused-ignore]
        """``(True, None)`` when due, ``(False, seconds left)`` before, ``(False, None)`` after.

        ``None`` as the next check means there is no next run.
        """
        rem_delta = self.remaining_estimate(last_run_at)
        if rem_delta is None:
            return _state(False, None)
        rem = max(rem_delta.total_seconds(), 0)
        if rem == 0:
            return _state(True, None)
        return _state(False, rem)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, clocked):
            return NotImplemented
        return bool(
            self.maybe_make_aware(self.clocked_time) == other.maybe_make_aware(other.clocked_time)
            and self.nowfun == other.nowfun
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<clocked: {self.clocked_time.isoformat()}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.clocked_time,), {"nowfun": self.nowfun})


#: The Gregorian calendar repeats every 400 years, weekdays included (146097 days, a whole
#: number of weeks): a crontab that matches at all matches within any such span.
_CALENDAR_CYCLE: Final = timedelta(days=146097)
#: Matched wall-clock times a search may pass over because they run at or before the instant
#: it starts from: those of one repeated stretch (60 for an hour of minutes; a zone that once
#: repeated a whole day, 1440).
_MAX_PASSED: Final = 24 * 60 * 2


class crontab(celery_crontab):  # type: ignore[misc,unused-ignore]
    """Celery's :class:`~celery.schedules.crontab`, in a time zone of its own, that runs once
    per wall-clock match across daylight-saving changes.

    ``crontab(minute=30, hour=2, tz="America/New_York")`` runs at 02:30 New York time; without
    ``tz`` the crontab reads the app's ``timezone`` setting (as Celery's does). The fields and
    their meaning are Celery's. Where a change of UTC offset makes a wall-clock time skipped or
    repeated (see :mod:`redbeat_core.zones`):

    - a time in the gap of a spring-forward runs once, at the first instant after the gap (the
      change itself: 03:00 when the clock jumps from 02:00 to 03:00); all the times of the gap
      and the change's own time are one run;
    - a time in the repeated stretch of a fall-back runs once, at its first occurrence (summer
      time); the second pass runs none of them.

    The next run after ``last_run_at`` is the first match whose instant is later than it.

    The crontab reads its clock (``now()``) in UTC, so the runs RedBeat stores, and the times it
    adds to them, have no skipped or repeated wall-clock time of their own.

    Stored as ``{"__type__": "redbeat.crontab", ..., "tz": ...}``: a celery-redbeat beat cannot
    read it (an entry using it is RedBeat-only).
    """

    nowfun: Callable[[], datetime] | None

    def __init__(
        self,
        minute: Any = "*",
        hour: Any = "*",
        day_of_week: Any = "*",
        day_of_month: Any = "*",
        month_of_year: Any = "*",
        *,
        tz: str | ZoneInfo | None = None,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        super().__init__(
            minute, hour, day_of_week, day_of_month, month_of_year, nowfun=nowfun, app=app
        )
        self.zone: str | None = _zone_name(tz)
        self._minutes = sorted(self.minute)
        self._hours = sorted(self.hour)
        self._days = sorted(self.day_of_month)

    @property
    def tz(self) -> tzinfo:  # type: ignore[override,unused-ignore]
        """The crontab's own zone, else the app's ``timezone``."""
        if self.zone is not None:
            return zone_named(self.zone)
        app_zone: tzinfo = self.app.timezone
        return app_zone

    def now(self) -> datetime:
        """The clock (``nowfun``, else the app's), in UTC."""
        return self._utc(super().now())

    def _utc(self, moment: datetime) -> datetime:
        """``moment`` in UTC; a naive one is UTC already (as Celery reads it)."""
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)

    # ------------------------------------------------------------------ the runs

    def next_run_after(self, moment: datetime) -> datetime:
        """The first run (aware, UTC) strictly after the instant ``moment`` (naive: UTC)."""
        moment = self._utc(moment)
        tz = self.tz
        # run_instant never decreases and puts the wall time of ``moment`` at or before it, so
        # no earlier wall time can run after ``moment``.
        wall = self._next_match(wall_clock(moment, tz))
        for _ in range(_MAX_PASSED):
            at = run_instant(wall, tz)
            if at > moment:
                return at
            wall = self._next_match(wall + timedelta(minutes=1))
        msg = f"{self!r} finds no run after {moment.isoformat()}"  # pragma: no cover
        raise RuntimeError(msg)  # pragma: no cover

    def _next_match(self, start: datetime) -> datetime:
        """The first naive wall-clock minute at or after ``start`` that the fields match (the
        month, day of month and day of week must all match, as in Celery's crontab)."""
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        year, month, first_day = start.year, start.month, start.day
        for _ in range(12 * 401):
            if month in self.month_of_year:
                found = self._match_in_month(year, month, first_day, start)
                if found is not None:
                    return found
            year, month, first_day = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)
        msg = f"{self!r} matches no date"  # pragma: no cover
        raise ValueError(msg)  # pragma: no cover

    def _match_in_month(
        self, year: int, month: int, first_day: int, start: datetime
    ) -> datetime | None:
        length = calendar.monthrange(year, month)[1]
        for day in self._days:
            if day < first_day:
                continue
            if day > length:
                break
            if date(year, month, day).isoweekday() % 7 not in self.day_of_week:
                continue  # Celery's days of the week: Sunday is 0
            after = (start.hour, start.minute) if date(year, month, day) == start.date() else None
            found = self._time_of_day(after)
            if found is not None:
                return datetime(year, month, day, *found)
        return None

    def _time_of_day(self, after: tuple[int, int] | None) -> tuple[int, int] | None:
        """The first matching (hour, minute), at or after ``after`` when given."""
        if after is None:
            return self._hours[0], self._minutes[0]
        for hour in self._hours:
            if hour > after[0]:
                return hour, self._minutes[0]
            if hour == after[0]:
                for minute in self._minutes:
                    if minute >= after[1]:
                        return hour, minute
        return None

    # ------------------------------------------------------------------ Celery's API

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:  # type: ignore[override,unused-ignore]
        """Time from now until the first run after ``last_run_at`` (negative when overdue)."""
        now = self.now()
        # Never ran (Celery's datetime(MINYEAR, 1, 2)) or ran long ago: overdue either way,
        # and a run is found within one calendar cycle.
        last = max(self._utc(last_run_at), now - _CALENDAR_CYCLE)
        delta: timedelta = self.next_run_after(last) - now
        return delta

    def is_due(self, last_run_at: datetime) -> schedstate:  # type: ignore[override,unused-ignore]
        """``(is_due, seconds until the next run)``, as Celery's crontab answers, with its
        ``beat_cron_starting_deadline`` setting: a run missed by more than that is not run."""
        now = self.now()
        rem = self.remaining_estimate(last_run_at).total_seconds()
        due = rem <= 0
        deadline = self.app.conf.get("beat_cron_starting_deadline")
        if due and deadline is not None and rem < 0:
            # Celery's rule: run only if a run falls within [now - deadline, now].
            since = now - timedelta(seconds=deadline, microseconds=1)
            due = self.next_run_after(since) <= now
        if rem <= 0:  # due, or a run missed beyond the deadline: the next one counts
            rem = (self.next_run_after(now) - now).total_seconds()
        return _state(due, max(rem, 0))

    def __eq__(self, other: object) -> bool:
        """Equal to a crontab of this class with the same fields, zone and clock."""
        if not isinstance(other, celery_crontab):
            return NotImplemented
        if not isinstance(other, crontab):
            return False  # a Celery crontab runs by another policy
        return bool(super().__eq__(other)) and self.zone == other.zone

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = (
            f"{self._orig_minute} {self._orig_hour} {self._orig_day_of_month} "
            f"{self._orig_month_of_year} {self._orig_day_of_week}"
        )
        return f"<crontab: {fields} (m/h/dM/MY/d) tz={self.zone or 'app'}>"

    def __reduce__(self) -> tuple[Any, ...]:
        args = (
            self._orig_minute,
            self._orig_hour,
            self._orig_day_of_week,
            self._orig_day_of_month,
            self._orig_month_of_year,
        )
        state = {"nowfun": self.nowfun, "app": self._app}
        return (_rebuild_crontab, (self.__class__, args, self.zone), state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.nowfun = state.get("nowfun")
        self._app = state.get("app")


def _rebuild_crontab(cls: type[crontab], args: tuple[Any, ...], zone: str | None) -> crontab:
    """Build a :class:`crontab` for ``__reduce__`` (pickle and ``copy`` pass no keywords)."""
    return cls(*args, tz=zone)


def _zone_name(tz: str | ZoneInfo | None) -> str | None:
    """The tz database name ``tz`` gives, checked; None for "the app's zone"."""
    if tz is None:
        return None
    if isinstance(tz, ZoneInfo):
        if not tz.key:
            msg = "a crontab's tz must be a tz database zone with a name, not one read from a file"
            raise ValueError(msg)
        tz = tz.key
    if not isinstance(tz, str):  # for untyped callers
        msg = f"a crontab's tz must be a tz database name such as 'Europe/London', got {tz!r}"  # type: ignore[unreachable]
        raise TypeError(msg)
    zone_named(tz)  # raises ValueError for a zone this host does not know
    return tz
