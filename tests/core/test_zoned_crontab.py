"""``redbeat_core.schedules.crontab``: Celery's crontab with a zone of its own and a DST policy.

Away from a change of UTC offset it must answer exactly as Celery's crontab does; across one,
``tests/core/test_dst.py`` simulates the tick. Here: the fields, the zone, Celery's API
(``is_due``, ``remaining_estimate``, the starting deadline), storage and description.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import MINYEAR, UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab as celery_crontab
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from redbeat_core.codec import Codec
from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.runtime import get_runtime
from redbeat_core.schedules import crontab
from redbeat_core.words import describe_schedule
from redbeat_core.zones import run_instant, zone_named


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


@pytest.fixture
def app() -> Any:
    app = Celery("zoned", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="teststore://nowhere", timezone="UTC")
    yield app
    app.close()


# ----------------------------------------------------------------------------- the zone


def test_tz_is_a_tz_database_name_or_none() -> None:
    assert crontab(minute=0, tz="Europe/Paris").zone == "Europe/Paris"
    assert crontab(minute=0, tz=ZoneInfo("Asia/Kolkata")).zone == "Asia/Kolkata"
    assert crontab(minute=0).zone is None
    with pytest.raises(ValueError, match=r"unknown time zone 'Mars/Olympus_Mons'"):
        crontab(minute=0, tz="Mars/Olympus_Mons")
    with pytest.raises(TypeError, match="tz database name"):
        crontab(minute=0, tz=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown time zone"):
        zone_named("../etc/passwd")


def test_without_tz_the_apps_timezone_setting_counts(app: Celery) -> None:
    sched = crontab(minute=30, hour=2, app=app)
    assert sched.tz == ZoneInfo("UTC")
    other = Celery("other", set_as_current=False)
    other.conf.timezone = "America/New_York"
    try:
        assert crontab(minute=30, hour=2, app=other).tz == ZoneInfo("America/New_York")
        assert crontab(tz="Asia/Tokyo", app=other).tz == ZoneInfo("Asia/Tokyo")
    finally:
        other.close()


def test_the_clock_is_read_in_utc() -> None:
    local = datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York"))
    sched = crontab(nowfun=at(local))
    assert sched.now() == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)
    assert sched.now().tzinfo is UTC
    naive = crontab(nowfun=at(datetime(2024, 1, 1, 12)))  # naive: UTC, as Celery reads it
    assert naive.now() == datetime(2024, 1, 1, 12, tzinfo=UTC)


# ----------------------------------------------------------------------------- the same as Celery


@st.composite
def _crontab_fields(draw: st.DrawFn) -> dict[str, str]:
    def field(low: int, high: int, star: float) -> str:
        if draw(st.floats(0, 1)) < star:
            return "*"
        values = draw(st.sets(st.integers(low, high), min_size=1, max_size=3))
        return ",".join(map(str, sorted(values)))

    return {
        "minute": field(0, 59, 0.2),
        "hour": field(0, 23, 0.4),
        "day_of_week": field(0, 6, 0.7),
        "day_of_month": field(1, 28, 0.7),
        "month_of_year": field(1, 12, 0.7),
    }


@settings(max_examples=300, deadline=None)
@given(
    fields=_crontab_fields(),
    moment=st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    zone=st.sampled_from(["UTC", "Asia/Kolkata", "Europe/London", "Australia/Lord_Howe"]),
)
def test_away_from_a_change_it_answers_as_celerys_crontab(
    fields: dict[str, str], moment: datetime, zone: str
) -> None:
    """The next run after ``moment``: Celery's crontab asked with a UTC clock (real time),
    unless a change of offset lies between the two (then the policies may differ)."""
    tz = ZoneInfo(zone)
    ours = crontab(**fields, tz=zone).next_run_after(moment)
    theirs_schedule = celery_crontab(**fields, nowfun=at(moment))
    theirs_schedule.tz = tz  # Celery's crontab reads the app's zone; give it this one
    theirs = moment + theirs_schedule.remaining_estimate(moment.astimezone(tz))
    span = (moment - timedelta(hours=3), max(ours, theirs) + timedelta(hours=3))
    assume(span[0].astimezone(tz).utcoffset() == span[1].astimezone(tz).utcoffset())
    assert ours == theirs


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    """Celery's rule (not Vixie cron's "either"): the 13th that is a Friday."""
    sched = crontab(minute=0, hour=0, day_of_month=13, day_of_week="fri", tz="UTC")
    assert sched.next_run_after(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(
        2024, 9, 13, tzinfo=UTC
    )


def test_a_feb_29_that_is_a_monday() -> None:
    sched = crontab(minute=0, hour=0, day_of_month=29, month_of_year=2, day_of_week=1, tz="UTC")
    assert sched.next_run_after(datetime(2024, 3, 1, tzinfo=UTC)) == datetime(
        2044, 2, 29, tzinfo=UTC
    )


# ----------------------------------------------------------------------------- Celery's API


def test_remaining_estimate_and_is_due() -> None:
    now = datetime(2024, 6, 1, 1, 50, tzinfo=UTC)
    sched = crontab(minute=0, hour=2, tz="UTC", nowfun=at(now))
    last = datetime(2024, 5, 31, 2, 0, tzinfo=UTC)
    assert sched.remaining_estimate(last) == timedelta(minutes=10)
    assert tuple(sched.is_due(last)) == (False, 600.0)
    due_now = crontab(minute=0, hour=2, tz="UTC", nowfun=at(now + timedelta(minutes=10)))
    assert tuple(due_now.is_due(last)) == (True, 86400.0)


def test_never_ran_is_due_at_once() -> None:
    """RedBeat's entries pass Celery's ``datetime(MINYEAR, 1, 2)`` for "never ran"."""
    now = datetime(2024, 6, 1, 12, 0, 30, tzinfo=UTC)
    sched = crontab(
        minute=0, hour=0, day_of_month=29, month_of_year=2, day_of_week=1, tz="UTC", nowfun=at(now)
    )
    never = datetime(MINYEAR, 1, 2, tzinfo=UTC)
    assert sched.remaining_estimate(never) < timedelta(0)
    due, next_in = sched.is_due(never)
    assert due is True
    assert next_in == (datetime(2044, 2, 29, tzinfo=UTC) - now).total_seconds()


def test_the_starting_deadline_is_celerys(app: Celery) -> None:
    app.conf.beat_cron_starting_deadline = 300
    last = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
    late = datetime(2024, 6, 2, 2, 4, tzinfo=UTC)  # 4 min late: within the deadline
    assert tuple(crontab(minute=0, hour=2, app=app, nowfun=at(late)).is_due(last)) == (
        True,
        86400.0 - 240,
    )
    later = datetime(2024, 6, 2, 2, 6, tzinfo=UTC)  # 6 min late: missed
    assert tuple(crontab(minute=0, hour=2, app=app, nowfun=at(later)).is_due(last)) == (
        False,
        86400.0 - 360,
    )


def test_a_whole_day_skipped() -> None:
    """Samoa skipped 2011-12-30 (from -10:00 to +14:00): the noon run of that day runs at the
    first instant of the 31st."""
    apia = ZoneInfo("Pacific/Apia")
    sched = crontab(minute=0, hour=12, tz="Pacific/Apia")
    first = sched.next_run_after(datetime(2011, 12, 29, 23, 0, tzinfo=UTC))
    assert first.astimezone(apia) == datetime(2011, 12, 31, 0, 0, tzinfo=apia)
    second = sched.next_run_after(first)
    assert second.astimezone(apia) == datetime(2011, 12, 31, 12, 0, tzinfo=apia)


def test_run_instant_is_the_policy() -> None:
    ny = ZoneInfo("America/New_York")
    gap, repeat = datetime(2024, 3, 10, 2, 30), datetime(2024, 11, 3, 1, 30)
    assert run_instant(gap, ny) == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert run_instant(repeat, ny) == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # EDT, first
    plain = datetime(2024, 6, 1, 12, 0)
    assert run_instant(plain, ny) == datetime(2024, 6, 1, 16, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- equality, copies


def test_equality_takes_the_zone_and_the_class() -> None:
    ours = crontab(minute=0, hour=2, tz="Europe/London")
    assert ours == crontab(minute="0", hour="2", tz="Europe/London")
    assert ours != crontab(minute=0, hour=2, tz="Europe/Paris")
    assert ours != crontab(minute=0, hour=2)
    assert ours != celery_crontab(minute=0, hour=2)  # another policy: not the same schedule
    assert celery_crontab(minute=0, hour=2) != ours
    assert ours != "0 2 * * *"


def test_copies_keep_the_zone_and_the_app(app: Celery) -> None:
    sched = crontab(minute="*/15", hour="1-3", tz="Australia/Lord_Howe", app=app)
    copied = copy.copy(sched)
    assert copied == sched
    assert copied.app is app
    assert copied.zone == "Australia/Lord_Howe"
    assert copy.deepcopy(crontab(minute=5, tz="Asia/Kolkata")) == crontab(
        minute=5, tz="Asia/Kolkata"
    )
    assert repr(sched) == "<crontab: */15 1-3 * * * (m/h/dM/MY/d) tz=Australia/Lord_Howe>"


# ----------------------------------------------------------------------------- storage


def test_stored_as_its_own_type() -> None:
    codec = Codec()
    raw = codec.dumps(crontab(minute=30, hour=2, tz="America/New_York"))
    assert raw == (
        '{"__type__": "redbeat.crontab", "minute": 30, "hour": 2, "day_of_week": "*", '
        '"day_of_month": "*", "month_of_year": "*", "tz": "America/New_York"}'
    )
    assert codec.loads(raw) == crontab(minute=30, hour=2, tz="America/New_York")
    app_zone = codec.dumps(crontab(minute=0))
    assert app_zone.endswith('"tz": null}')
    assert codec.loads(app_zone).zone is None
    # Celery's own crontab keeps its tag and its bytes.
    assert codec.dumps(celery_crontab(minute=0)).startswith('{"__type__": "crontab"')


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ('"tz": "Mars/Olympus_Mons"', "unknown time zone 'Mars/Olympus_Mons'"),
        ('"tz": 3', "tz must be a time zone name or null, got int"),
        ('"second": 0', "unknown field(s) 'second'"),
        ('"minute": "61"', "Invalid"),
    ],
)
def test_a_bad_stored_value_is_refused_with_the_reason(fields: str, reason: str) -> None:
    raw = f'{{"__type__": "redbeat.crontab", {fields}}}'
    with pytest.raises(ValueError, match=r"invalid 'redbeat.crontab' value") as failed:
        Codec().loads(raw)
    assert reason in str(failed.value)


def test_an_entry_keeps_it_through_storage(app: Celery) -> None:
    entry = RedBeatSchedulerEntry(
        "nightly", "tasks.nightly", crontab(minute=30, hour=1, tz="Europe/London"), app=app
    )
    now = datetime(2024, 3, 30, 12, tzinfo=UTC)
    entry.last_run_at = now
    stored = entry.to_stored(now)
    assert '"__type__": "redbeat.crontab"' in (stored.definition or "")
    # 2024-03-31 01:30 does not exist in London: 02:00 BST, the end of the gap, 01:00 UTC.
    assert stored.score == datetime(2024, 3, 31, 1, 0, tzinfo=UTC).timestamp()
    codec = get_runtime(app).codec
    back = RedBeatSchedulerEntry.from_stored(stored, app=app, now=at(now))
    assert isinstance(back.schedule, crontab)
    assert (back.schedule.zone, back.schedule.hour, back.schedule.minute) == (
        "Europe/London",
        {1},
        {30},
    )
    assert back.schedule.app is app
    assert codec.decode_definition(stored.definition, name="nightly").schedule.zone == (
        "Europe/London"
    )


# ----------------------------------------------------------------------------- words


def test_described_with_its_zone() -> None:
    assert describe_schedule(crontab(minute=0, hour=3, tz="Europe/London")) == (
        "at 03:00 every day in Europe/London (crontab 0 3 * * *)"
    )
    assert describe_schedule(crontab(minute="*/5")) == (
        "crontab */5 * * * * in the app's time zone"
    )
    assert describe_schedule(celery_crontab(minute=0, hour=3)) == (
        "at 03:00 every day (crontab 0 3 * * *)"
    )
