"""rrule behaves as celery-redbeat's; clocked runs once; solar is Celery's.

is_due returns a ``schedstate`` namedtuple, compared here with plain tuples.
"""

from __future__ import annotations

import copy
import time
from datetime import MINYEAR, UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import celery.schedules
import pytest
from celery.schedules import crontab
from dateutil.rrule import DAILY, FR, MO, MONTHLY, TU, WEEKLY
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from redbeat_core import schedules
from redbeat_core.schedules import clocked, rrule

START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def at(moment: datetime) -> Any:
    return lambda: moment


def due(sched: Any, last_run_at: datetime | None) -> tuple[Any, ...]:
    """``sched.is_due(last_run_at)`` (a ``schedstate`` namedtuple) as a plain tuple."""
    return tuple(sched.is_due(last_run_at))


# ------------------------------------------------------------------------------ rrule


def test_rrule_freq_names_and_unknown_name() -> None:
    assert rrule("daily", dtstart=START).freq == DAILY
    assert rrule("WEEKLY", dtstart=START).freq == WEEKLY
    assert rrule(MONTHLY, dtstart=START).freq == MONTHLY
    with pytest.raises(ValueError, match=r"unknown rrule freq 'FORTNIGHTLY'.*DAILY"):
        rrule("FORTNIGHTLY", dtstart=START)


def test_rrule_dtstart_defaults_to_now_and_naive_is_utc() -> None:
    now = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
    assert rrule("DAILY", nowfun=at(now)).dtstart == now
    naive = rrule("DAILY", dtstart=datetime(2024, 6, 1, 12, 30), until=datetime(2024, 7, 1))
    assert naive.dtstart == now
    assert naive.dtstart.utcoffset() == timedelta(0)
    assert naive.until == datetime(2024, 7, 1, tzinfo=UTC)


def test_rrule_not_due_reports_seconds_to_next_occurrence() -> None:
    sched = rrule("DAILY", dtstart=START, nowfun=at(datetime(2024, 1, 2, 8, 0, tzinfo=UTC)))
    assert sched.remaining_estimate(START) == timedelta(hours=1)
    assert due(sched, START) == (False, 3600.0)


def test_rrule_due_reports_seconds_to_the_one_after() -> None:
    now = datetime(2024, 1, 2, 9, 0, 30, tzinfo=UTC)
    sched = rrule("DAILY", dtstart=START, nowfun=at(now))
    assert due(sched, START) == (True, 86400.0 - 30)


def test_rrule_finished_after_count() -> None:
    sched = rrule("HOURLY", dtstart=START, count=2, nowfun=at(START + timedelta(days=1)))
    last = START + timedelta(hours=1)
    assert sched.remaining_estimate(last) is None
    assert due(sched, last) == (False, None)


def test_rrule_due_with_no_next_occurrence_after_now() -> None:
    until = START + timedelta(hours=1)
    sched = rrule("HOURLY", dtstart=START, until=until, nowfun=at(until + timedelta(minutes=5)))
    assert due(sched, START) == (True, None)


def test_rrule_never_ran_counts_from_first_occurrence() -> None:
    # celery-redbeat passes datetime(MINYEAR, 1, 2) for "never ran"; RedBeat may pass None.
    sched = rrule(
        "WEEKLY", dtstart=START, byweekday=FR, nowfun=at(datetime(2024, 1, 3, tzinfo=UTC))
    )
    first = datetime(2024, 1, 5, 9, 0, tzinfo=UTC)
    assert sched.remaining_estimate(None) == first - datetime(2024, 1, 3, tzinfo=UTC)
    stand_in = datetime(MINYEAR, 1, 2, tzinfo=UTC)
    assert sched.remaining_estimate(stand_in) == sched.remaining_estimate(None)
    overdue = rrule("DAILY", dtstart=START, nowfun=at(START + timedelta(hours=2)))
    assert overdue.is_due(None).is_due is True


def test_rrule_equality_ignores_container_types() -> None:
    a = rrule(WEEKLY, dtstart=START, byweekday=[MO, TU], byhour=(9, 17), wkst=MO)
    b = rrule(WEEKLY, dtstart=START, byweekday=(1, 0), byhour=[17, 9], wkst=0)
    assert a == b
    assert rrule(DAILY, dtstart=START, byhour=9) == rrule(DAILY, dtstart=START, byhour=[9])
    same_instant = START.astimezone(timezone(timedelta(hours=2)))
    assert rrule(DAILY, dtstart=START) == rrule(DAILY, dtstart=same_instant)


@pytest.mark.parametrize(
    "other",
    [
        rrule(WEEKLY, dtstart=START, byweekday=[MO, TU], byhour=[9]),
        rrule(WEEKLY, dtstart=START, byweekday=[MO(+1), TU], byhour=[9, 17]),
        rrule(WEEKLY, dtstart=START + timedelta(seconds=1), byweekday=[MO, TU], byhour=[9, 17]),
        rrule(WEEKLY, dtstart=START, byweekday=[MO, TU], byhour=[9, 17], count=3),
        rrule(WEEKLY, dtstart=START, byweekday=[MO, TU], byhour=[9, 17], interval=2),
        rrule(DAILY, dtstart=START, byweekday=[MO, TU], byhour=[9, 17]),
    ],
)
def test_rrule_inequality(other: rrule) -> None:
    assert rrule(WEEKLY, dtstart=START, byweekday=[MO, TU], byhour=[9, 17]) != other


def test_rrule_is_not_equal_to_other_schedules() -> None:
    assert rrule(DAILY, dtstart=START) != crontab(minute=0, hour=9)
    assert rrule(DAILY, dtstart=START) != "rrule"


def test_rrule_copy_and_reduce() -> None:
    now = at(START)
    original = rrule(
        MONTHLY,
        dtstart=datetime(2024, 1, 31, 8, tzinfo=ZoneInfo("Europe/Paris")),
        until=datetime(2025, 1, 1, tzinfo=UTC),
        bymonthday=[-1],
        byweekday=[FR(-1)],
        nowfun=now,
    )
    for clone in (copy.copy(original), copy.deepcopy(original)):
        assert clone is not original
        assert clone == original
        assert clone.nowfun is now
        assert list(clone.rrule) == list(original.rrule)
    assert [d.date().isoformat() for d in original.rrule] == ["2024-05-31"]  # last day, a Friday
    cls, args, state = original.__reduce__()
    rebuilt = cls(*args)
    rebuilt.__dict__.update(state)
    assert rebuilt == original


def test_rrule_repr_is_celery_redbeats() -> None:
    text = repr(rrule(DAILY, dtstart=START, count=3))
    assert text.startswith("<rrule: freq: 3, dtstart: 2024-01-01 09:00:00+00:00, interval: 1, ")
    assert "count: 3, until: None" in text
    assert text.endswith("byminute: None, bysecond: None>")


# ------------------------------------------------------------------------------ clocked

WHEN = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def test_clocked_before_its_time() -> None:
    sched = clocked(WHEN, nowfun=at(WHEN - timedelta(minutes=10)))
    assert sched.remaining_estimate(None) == timedelta(minutes=10)
    assert due(sched, None) == (False, 600.0)


@pytest.mark.parametrize("late", [timedelta(0), timedelta(days=3)])
def test_clocked_due_once_its_time_came(late: timedelta) -> None:
    sched = clocked(WHEN, nowfun=at(WHEN + late))
    assert sched.remaining_estimate(None) == -late
    assert due(sched, None) == (True, None)


@pytest.mark.parametrize(
    "last_run_at",
    [
        datetime(MINYEAR, 1, 2, tzinfo=UTC),  # celery-redbeat's stand-in for "never ran"
        WHEN - timedelta(seconds=1),  # ran before (e.g. created then rescheduled)
    ],
)
def test_clocked_earlier_run_is_not_its_run(last_run_at: datetime) -> None:
    sched = clocked(WHEN, nowfun=at(WHEN + timedelta(seconds=1)))
    assert due(sched, last_run_at) == (True, None)


@pytest.mark.parametrize(
    "ran_at", [WHEN, WHEN + timedelta(microseconds=1), WHEN + timedelta(days=9)]
)
def test_clocked_finished_after_it_ran(ran_at: datetime) -> None:
    sched = clocked(WHEN, nowfun=at(WHEN + timedelta(days=10)))
    assert sched.remaining_estimate(ran_at) is None
    assert due(sched, ran_at) == (False, None)


def test_clocked_compares_instants_across_timezones() -> None:
    tokyo = WHEN.astimezone(ZoneInfo("Asia/Tokyo"))
    now = at(WHEN)
    sched = clocked(tokyo, nowfun=now)
    assert due(sched, None) == (True, None)
    assert due(sched, WHEN) == (False, None)
    assert sched == clocked(WHEN, nowfun=now)
    assert sched != clocked(WHEN)  # like Celery's crontab, a different clock is a difference


def test_clocked_naive_time_is_utc() -> None:
    naive = clocked(datetime(2030, 6, 1, 12, 0), nowfun=at(WHEN - timedelta(seconds=5)))
    assert naive.remaining_estimate(None) == timedelta(seconds=5)
    assert clocked(datetime(2030, 6, 1, 12, 0)) == clocked(WHEN)


def test_clocked_equality_repr_and_copy() -> None:
    assert clocked(WHEN) == clocked(WHEN)
    assert clocked(WHEN) != clocked(WHEN + timedelta(seconds=1))
    assert clocked(WHEN) != crontab()
    assert repr(clocked(WHEN)) == "<clocked: 2030-06-01T12:00:00+00:00>"
    now = at(WHEN)
    original = clocked(WHEN, nowfun=now)
    for clone in (copy.copy(original), copy.deepcopy(original)):
        assert clone == original
        assert clone.nowfun is now
        assert clone.clocked_time == WHEN
    cls, args, _state = original.__reduce__()
    assert cls(*args).clocked_time == WHEN


def test_clocked_needs_a_datetime() -> None:
    with pytest.raises(TypeError, match="clocked_time must be a datetime, got str"):
        clocked("2030-06-01")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ solar


def test_solar_is_celerys() -> None:
    assert schedules.solar is celery.schedules.solar
    assert set(schedules.__all__) == {"clocked", "crontab", "rrule", "solar"}


# ----------------------------------------------------------------------------- rrule cost


@pytest.mark.parametrize(
    ("rule", "ran"),
    [
        # A plausible rule: every minute since 2020 (~3.6 M steps for dateutil from dtstart).
        (lambda now: rrule("MINUTELY", dtstart=datetime(2020, 1, 1, tzinfo=UTC)), 30),
        # Every second since 1970, and counted (a billion occurrences: finished by 2001).
        (
            lambda now: rrule("SECONDLY", dtstart=datetime(1970, 1, 1, tzinfo=UTC), count=10**10),
            1,
        ),
        # Every 5 seconds at second 10 of minute 7 of hours 3 and 15, since 1970.
        (
            lambda now: rrule(
                "SECONDLY",
                dtstart=datetime(1970, 1, 1, tzinfo=UTC),
                interval=5,
                byhour=(3, 15),
                byminute=7,
                bysecond=10,
            ),
            3600,
        ),
    ],
)
def test_an_rrule_started_long_ago_costs_a_few_steps(rule: Any, ran: int) -> None:
    """dateutil walks from dtstart: these took seconds to forever per call (a tick stalled on
    one entry, the lease lapsed, leadership flapped). They are asked from near now instead."""
    now = datetime(2026, 12, 5, 7, 58, 0, tzinfo=UTC)
    sched = rule(now)
    sched.nowfun = at(now)
    started = time.perf_counter()
    state = due(sched, now - timedelta(seconds=ran))
    assert time.perf_counter() - started < 0.5  # dateutil alone: seconds, or never
    assert state[1] is None or 0 <= state[1] <= 86400


def test_a_counted_rrule_is_finished_when_its_occurrences_are_used_up() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    sched = rrule("MINUTELY", dtstart=now - timedelta(days=10), count=100, nowfun=at(now))
    assert due(sched, now - timedelta(minutes=1)) == (False, None)
    fresh = rrule("MINUTELY", dtstart=now - timedelta(minutes=10), count=100, nowfun=at(now))
    assert fresh.after(now) == now + timedelta(minutes=1)


_FREQS = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY")
_UNITS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 604800}


@st.composite
def _rules(draw: Any) -> tuple[rrule, datetime]:
    """A rule dateutil can still walk from its start (at most a few thousand periods back),
    and an instant to ask it about."""
    freq = draw(st.sampled_from(_FREQS))
    interval = draw(st.integers(1, 5))
    zone = draw(st.sampled_from([UTC, ZoneInfo("Europe/Paris"), timezone(timedelta(hours=5))]))
    periods = draw(st.integers(0, 3000))
    moment = datetime(2026, 3, 29, 0, 30, tzinfo=UTC) + timedelta(
        seconds=draw(st.integers(0, 10 * 86400))
    )
    start = (moment - timedelta(seconds=periods * interval * _UNITS[freq])).astimezone(zone)
    filters: dict[str, Any] = {}
    if draw(st.booleans()):
        filters["byhour"] = draw(st.sets(st.integers(0, 23), min_size=1, max_size=4))
    if draw(st.booleans()):
        filters["byminute"] = draw(st.sets(st.integers(0, 59), min_size=1, max_size=4))
    if draw(st.booleans()):
        filters["byweekday"] = draw(st.sets(st.integers(0, 6), min_size=1, max_size=3))
    count = draw(st.one_of(st.none(), st.integers(1, 4000)))
    try:
        rule = rrule(freq, dtstart=start, interval=interval, count=count, **filters)
    except ValueError:  # dateutil refuses filters that can never match at that interval
        reject()
    return rule, moment


@settings(max_examples=300, deadline=None)
@given(_rules())
def test_the_fast_rrule_finds_what_dateutil_finds(case: tuple[rrule, datetime]) -> None:
    """Asked from near the instant, the rule gives dateutil's own answer: same occurrence,
    same end, across time zones with daylight saving, filters and counts."""
    sched, moment = case
    assert sched.after(moment) == sched.rrule.after(moment)
