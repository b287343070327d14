"""Crontabs and solar schedules across real daylight-saving changes, tick by tick.

A simulated beat drives the real planning steps (``plan_tick`` then ``settle``) with a clock it
controls: an entry that last ran before a change is claimed exactly at its stored next due time
(or a little ahead of it, as ``redbeat_prepare_ahead`` does), its update becomes the next stored
record, and every run instant is collected. No server, no sleeping, no real clock: the app's own
clock fails if anything reads it.

The changes are found in the tz database (``zoneinfo``), not written here: Europe/London and
America/New_York (one hour), Australia/Lord_Howe (half an hour), Asia/Kolkata (none), and two
zones whose rules changed: America/Sao_Paulo (spring forward at midnight; DST abolished in 2019)
and Europe/Moscow (summer time kept in 2011, given up in 2014).

RedBeat's :class:`redbeat_core.schedules.crontab` must run every wall-clock match exactly once,
as ``docs/policies.md`` ("Time zones and DST") states: a match in a spring-forward gap at the
first instant after the gap, a match in a fall-back repeat at its first occurrence. What it must
do is computed here by brute force, minute by minute, from the tz database alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from celery import Celery
from celery.schedules import crontab as celery_crontab
from celery.schedules import solar

from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.planning import TickTime, plan_tick, settle
from redbeat_core.runtime import get_runtime
from redbeat_core.schedules import crontab
from redbeat_core.typing import StoredEntry

#: The zones and years the table covers, and the changes the tz database must have there.
ZONE_YEARS: dict[tuple[str, int], tuple[str, ...]] = {
    ("Europe/London", 2024): ("spring-forward", "fall-back"),
    ("America/New_York", 2024): ("spring-forward", "fall-back"),
    ("Australia/Lord_Howe", 2024): ("fall-back", "spring-forward"),
    ("America/Sao_Paulo", 2018): ("fall-back", "spring-forward"),
    ("America/Sao_Paulo", 2019): ("fall-back",),  # the last one: DST was abolished
    ("Europe/Moscow", 2011): ("spring-forward",),  # and never back: summer time kept
    ("Europe/Moscow", 2014): ("fall-back",),  # to +03:00 for good
    ("Asia/Kolkata", 2024): (),
}

try:
    for _zone, _ in ZONE_YEARS:
        ZoneInfo(_zone)
except ZoneInfoNotFoundError:  # pragma: no cover - a host without the tz database
    pytest.skip("the tz database is not installed", allow_module_level=True)


# ----------------------------------------------------------------------------- the tz database


@dataclass(frozen=True)
class Transition:
    """One change of a zone's UTC offset, as the tz database has it."""

    zone: str
    at: datetime  # the instant of the change (UTC)
    before: timedelta  # the offset until then
    after: timedelta  # the offset from then on

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def kind(self) -> str:
        return "spring-forward" if self.after > self.before else "fall-back"

    @property
    def length(self) -> timedelta:
        return abs(self.after - self.before)

    @property
    def stretch(self) -> tuple[datetime, datetime]:
        """The naive wall-clock times skipped (spring forward) or shown twice (fall back)."""
        old = (self.at + self.before).replace(tzinfo=None)
        new = (self.at + self.after).replace(tzinfo=None)
        return (old, new) if old < new else (new, old)

    @property
    def middle(self) -> datetime:
        start, _ = self.stretch
        return start + self.length // 2

    def __str__(self) -> str:
        return f"{self.zone}-{self.at.astimezone(self.tz):%Y-%m-%d}-{self.kind}"  # local date


def _offset(moment: datetime, tz: ZoneInfo) -> timedelta:
    offset = moment.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def transitions(zone: str, year: int) -> list[Transition]:
    """The changes of ``zone``'s offset during ``year``, to the second (day by day, then
    halving the day that has one)."""
    tz = ZoneInfo(zone)
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        following = day + timedelta(days=1)
        before = _offset(day, tz)
        if _offset(following, tz) != before:
            low, high = int(day.timestamp()), int(following.timestamp())  # whole seconds
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(datetime.fromtimestamp(middle, UTC), tz) == before:
                    low = middle
                else:
                    high = middle
            change = datetime.fromtimestamp(high, UTC)
            found.append(Transition(zone, change, before, _offset(change, tz)))
        day = following
    return found


ALL_TRANSITIONS = [t for zone, year in ZONE_YEARS for t in transitions(zone, year)]


def test_the_tz_database_has_the_changes_the_table_covers() -> None:
    for (zone, year), kinds in ZONE_YEARS.items():
        assert tuple(t.kind for t in transitions(zone, year)) == kinds, (zone, year)
    lord_howe = [t for t in ALL_TRANSITIONS if t.zone == "Australia/Lord_Howe"]
    assert {t.length for t in lord_howe} == {timedelta(minutes=30)}
    assert transitions("America/Sao_Paulo", 2020) == []  # no DST any more
    assert transitions("Europe/Moscow", 2012) == []  # summer time all year


# ----------------------------------------------------------------------------- the beat


def no_clock() -> datetime:
    raise AssertionError("planning read the app's own clock")


@contextmanager
def celery_app(zone: str) -> Iterator[Celery]:
    """An app whose ``timezone`` setting is ``zone``; nothing connects anywhere."""
    app = Celery("dst", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="teststore://nowhere", timezone=zone)
    try:
        yield app
    finally:
        app.close()


@dataclass(frozen=True)
class Beat:
    """What a simulated beat did: the instants it ran the entry at, and how often it woke."""

    runs: list[datetime]
    wakes: int


def simulate(
    app: Celery, schedule: Any, start: datetime, end: datetime, *, ahead: float = 0.0
) -> Beat:
    """Tick through ``(start, end]`` with an entry that last ran at ``start``: each tick is
    claimed at the stored next due time (``ahead`` seconds before it), planned, settled, and
    its update stored for the next one."""
    codec = get_runtime(app).codec
    entry = RedBeatSchedulerEntry("job", "tasks.job", schedule, app=app)
    entry.last_run_at = start
    saved = entry.to_stored(start)
    record = StoredEntry("job", saved.definition, saved.meta, saved.policy, saved.score)
    runs: list[datetime] = []
    wakes = 0
    zone = app.timezone
    clock, app.now = app.now, no_clock
    try:
        while record.score is not None and record.score <= end.timestamp():
            wakes += 1
            assert wakes <= 1000, "the beat never got past the window"
            due = record.score
            woke = due - ahead
            # The scheduler's clock: Unix time, and the app's clock in the app's time zone.
            tick = TickTime(now=woke, schedule_now=datetime.fromtimestamp(woke, zone))
            plan = plan_tick(
                [record], app=app, codec=codec, time=tick, entry_class=RedBeatSchedulerEntry
            )
            assert plan.quarantine == ()
            settled = settle(plan, {}, codec=codec)
            runs += [planned.ran_at.astimezone(UTC) for planned in plan.runs]
            (update,) = settled.updates
            assert update.score is not None
            assert update.score > due, "the entry is due again at the same time"
            meta = update.meta if update.meta is not None else record.meta
            record = StoredEntry("job", record.definition, meta, record.policy, update.score)
    finally:
        app.now = clock  # type: ignore[method-assign]
    return Beat(runs, wakes)


# ----------------------------------------------------------------------------- what must run


def _matches(wall: datetime, minutes: frozenset[int] | None, hours: frozenset[int] | None) -> bool:
    return (minutes is None or wall.minute in minutes) and (hours is None or wall.hour in hours)


def _occurrences(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC) at which ``tz`` shows ``wall``: none in a gap, two in a repeat."""
    found = []
    for fold in (0, 1):
        moment = wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if moment.astimezone(tz).replace(tzinfo=None) == wall and moment not in found:
            found.append(moment)
    return sorted(found)


def _gap_end(wall: datetime, zone: str) -> datetime:
    """The change whose spring-forward gap holds ``wall``: the first instant after the gap."""
    for change in ALL_TRANSITIONS:
        start, end = change.stretch
        if change.zone == zone and change.kind == "spring-forward" and start <= wall < end:
            return change.at
    raise AssertionError(f"{wall} exists nowhere and is in no known gap of {zone}")


def wall_minutes(start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[datetime]:
    """Every naive wall-clock minute from a little before ``start`` to a little after ``end``."""
    wall = start.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=3)
    last = end.astimezone(tz).replace(tzinfo=None) + timedelta(hours=3)
    while wall <= last:
        yield wall
        wall += timedelta(minutes=1)


def redbeat_policy(
    zone: str, minutes: frozenset[int] | None, hours: frozenset[int] | None, window: Window
) -> list[datetime]:
    """The runs the stated policy gives, by brute force: every matching wall-clock minute runs
    at the instant it names, at its first occurrence when repeated, at the end of its gap when
    skipped; runs at one instant are one run."""
    tz = ZoneInfo(zone)
    instants = set()
    for wall in wall_minutes(window.start, window.end, tz):
        if _matches(wall, minutes, hours):
            occurrences = _occurrences(wall, tz)
            instants.add(occurrences[0] if occurrences else _gap_end(wall, zone))
    return sorted(i for i in instants if window.start < i <= window.end)


def celery_policy(
    zone: str, minutes: frozenset[int] | None, hours: frozenset[int] | None, window: Window
) -> list[datetime]:
    """What Celery 5.7's crontab gives when asked with a clock that counts real time (its own
    beat sleeps real seconds): a skipped time runs as late as the gap is long (02:30 at 03:30),
    a repeated time at its first occurrence."""
    tz = ZoneInfo(zone)
    instants = {
        wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        for wall in wall_minutes(window.start, window.end, tz)
        if _matches(wall, minutes, hours)
    }
    return sorted(i for i in instants if window.start < i <= window.end)


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Case:
    """One schedule simulated across one change."""

    change: Transition
    label: str
    minutes: frozenset[int] | None  # None: every minute
    hours: frozenset[int] | None  # None: every hour
    window: Window

    def fields(self) -> dict[str, str]:
        def spec(values: frozenset[int] | None) -> str:
            return "*" if values is None else ",".join(map(str, sorted(values)))

        return {"minute": spec(self.minutes), "hour": spec(self.hours)}

    def __str__(self) -> str:
        return f"{self.change}-{self.label}"


def cases_for(change: Transition) -> list[Case]:
    """Hourly, hourly at the stretch's middle minute, daily at its first and its middle
    minute, and every minute through it."""
    first, _ = change.stretch
    middle = change.middle
    at = change.at
    hours = Window(at - timedelta(hours=3), at + change.length + timedelta(hours=3))
    days = Window(at - timedelta(days=2), at + timedelta(days=2))
    minutes = Window(at - timedelta(minutes=5), at + change.length + timedelta(minutes=5))
    return [
        Case(change, "hourly", frozenset({0}), None, hours),
        Case(change, f"hourly-at-{middle:%M}", frozenset({middle.minute}), None, hours),
        Case(
            change, f"daily-{first:%H%M}", frozenset({first.minute}), frozenset({first.hour}), days
        ),
        Case(
            change,
            f"daily-{middle:%H%M}",
            frozenset({middle.minute}),
            frozenset({middle.hour}),
            days,
        ),
        Case(change, "minutely", None, None, minutes),
    ]


CASES = [case for change in ALL_TRANSITIONS for case in cases_for(change)]


def check_runs(runs: list[datetime], expected: list[datetime], tz: ZoneInfo) -> None:
    """The invariants every simulated crontab must keep, then the exact runs."""
    assert runs, "no run in the window: the case tests nothing"
    assert runs == sorted(set(runs)), "a run went back in time or ran twice at one instant"
    walls = [run.astimezone(tz).replace(tzinfo=None) for run in runs]
    assert len(set(walls)) == len(walls), "one wall-clock time ran twice"
    assert runs == expected  # once per wall-clock match: none doubled, none lost


# ----------------------------------------------------------------------------- RedBeat's crontab


@pytest.mark.parametrize("ahead", [0.0, 0.05], ids=["at-due-time", "prepared-ahead"])
@pytest.mark.parametrize("zone_from", ["app", "entry"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_redbeat_crontab_runs_each_wall_clock_match_once(
    case: Case, zone_from: str, ahead: float
) -> None:
    """``zone_from="app"``: the crontab has no zone and the app's ``timezone`` is the zone;
    ``"entry"``: the app runs in another zone and the crontab names its own."""
    zone = case.change.zone
    if zone_from == "app":
        app_zone, schedule = zone, crontab(**case.fields())
    else:
        app_zone, schedule = "Asia/Tokyo", crontab(**case.fields(), tz=zone)
    with celery_app(app_zone) as app:
        beat = simulate(app, schedule, case.window.start, case.window.end, ahead=ahead)
    expected = redbeat_policy(zone, case.minutes, case.hours, case.window)
    check_runs(beat.runs, expected, case.change.tz)
    # The stored next run is exact: every wake-up is a run, never a "not yet".
    assert beat.wakes == len(beat.runs)


def test_the_daily_cases_fall_inside_each_gap_and_repeat() -> None:
    """The daily cases ask for a time the change skips or repeats (else they test nothing)."""
    daily = [case for case in CASES if case.label.startswith("daily-")]
    assert len(daily) == 2 * len(ALL_TRANSITIONS)
    for case in daily:
        start, end = case.change.stretch
        (hour,), (minute,) = sorted(case.hours or ()), sorted(case.minutes or ())
        asked = datetime.combine(start.date(), time(hour, minute))
        assert start <= asked < end, case


# ----------------------------------------------------------------------------- Celery's crontab

#: Celery's crontab in RedBeat's tick follows Celery's own policy (skipped times shifted by the
#: gap). The tick's clock is the app's (``app.now()``, in the app's zone), and RedBeat adds the
#: schedule's remaining real time to it in real time (``entry.shift``): added as wall-clock
#: time, as celery-redbeat does, every run after a fall back would land an hour late.


@pytest.mark.parametrize("change", ALL_TRANSITIONS, ids=str)
def test_celery_crontab_in_the_tick(change: Transition) -> None:
    """The same table with Celery's crontab (one test per change, all five schedules)."""
    wrong = []
    for case in cases_for(change):
        with celery_app(change.zone) as app:
            schedule = celery_crontab(**case.fields())
            beat = simulate(app, schedule, case.window.start, case.window.end)
        if beat.runs != celery_policy(change.zone, case.minutes, case.hours, case.window):
            wrong.append(case.label)
    assert wrong == []


def _new_york_hourly(schedule: Any) -> list[datetime]:
    (change,) = [t for t in ALL_TRANSITIONS if str(t) == "America/New_York-2024-11-03-fall-back"]
    window = Window(change.at - timedelta(hours=2), change.at + timedelta(hours=3))
    with celery_app(change.zone) as app:
        return simulate(app, schedule, window.start, window.end).runs


#: 02:00 EST, the first hour after New York's 2024 fall back.
TWO_EST = datetime(2024, 11, 3, 7, 0, tzinfo=UTC)


def test_celery_crontab_runs_the_first_hour_after_a_fall_back() -> None:
    """The failure wall-clock arithmetic made, spelled out: with Celery's crontab 02:00 EST
    never ran (01:00 EDT plus the two real hours to 02:00 EST, added on the wall clock, is
    03:00)."""
    assert TWO_EST in _new_york_hourly(celery_crontab(minute=0))


def test_redbeat_crontab_runs_the_first_hour_after_a_fall_back() -> None:
    runs = _new_york_hourly(crontab(minute=0))
    assert TWO_EST in runs
    assert [f"{r.astimezone(ZoneInfo('America/New_York')):%H:%M%z}" for r in runs] == [
        "01:00-0400",
        "02:00-0500",  # 01:00-0500 is the repeat of 01:00: not run again
        "03:00-0500",
        "04:00-0500",
    ]


# ----------------------------------------------------------------------------- solar

#: A place in each zone: its sunrise and sunset are instants, whatever the clocks show.
PLACES = {
    "Europe/London": (51.51, -0.13),
    "America/New_York": (40.71, -74.01),
    "Australia/Lord_Howe": (-31.55, 159.08),
    "America/Sao_Paulo": (-23.55, -46.63),
    "Europe/Moscow": (55.76, 37.62),
    "Asia/Kolkata": (22.57, 88.36),
}
#: Celery's solar is right, and so is the tick now that it adds the remaining real time in
#: real time: the first event after a fall back is on time.


def _stopped(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def solar_events(event: str, lat: float, lon: float, window: Window) -> list[datetime]:
    """The events in the window, as Celery's solar computes them with a UTC clock."""
    found: list[datetime] = []
    moment = window.start
    while True:
        schedule = solar(event, lat, lon, nowfun=_stopped(moment))
        moment += schedule.remaining_estimate(moment)
        if moment > window.end:
            return found
        found.append(moment)


@pytest.mark.parametrize("change", ALL_TRANSITIONS, ids=str)
@pytest.mark.parametrize("event", ["sunrise", "sunset"])
def test_solar_runs_at_each_event(change: Transition, event: str) -> None:
    pytest.importorskip("ephem", reason="solar schedules need celery[solar]")
    lat, lon = PLACES[change.zone]
    window = Window(change.at - timedelta(days=3), change.at + timedelta(days=3))
    with celery_app(change.zone) as app:
        beat = simulate(app, solar(event, lat, lon), window.start, window.end)
    expected = solar_events(event, lat, lon, window)
    assert len(beat.runs) == len(expected) == 6  # one a day: none doubled, none lost
    for ran, due in zip(beat.runs, expected, strict=True):
        assert abs((ran - due).total_seconds()) < 0.01, (ran, due)


@pytest.mark.parametrize("event", ["sunrise", "sunset"])
def test_solar_in_a_zone_without_dst(event: str) -> None:
    pytest.importorskip("ephem", reason="solar schedules need celery[solar]")
    lat, lon = PLACES["Asia/Kolkata"]
    window = Window(datetime(2024, 3, 28, 12, tzinfo=UTC), datetime(2024, 4, 3, 12, tzinfo=UTC))
    with celery_app("Asia/Kolkata") as app:
        beat = simulate(app, solar(event, lat, lon), window.start, window.end)
    expected = solar_events(event, lat, lon, window)
    assert len(beat.runs) == len(expected) == 6
    for ran, due in zip(beat.runs, expected, strict=True):
        assert abs((ran - due).total_seconds()) < 0.01, (ran, due)


# ----------------------------------------------------------------------------- no DST at all


@pytest.mark.parametrize(
    ("fields", "every"),
    [
        ({"minute": "0"}, timedelta(hours=1)),
        ({"minute": "30", "hour": "2"}, timedelta(days=1)),
        ({}, timedelta(minutes=1)),
    ],
    ids=["hourly", "daily-0230", "minutely"],
)
@pytest.mark.parametrize("europe_changes", [True, False], ids=["late-march", "late-october"])
def test_a_zone_without_dst_runs_evenly(
    fields: dict[str, str], every: timedelta, europe_changes: bool
) -> None:
    """Asia/Kolkata (+05:30 all year) while Europe changes its clocks: evenly spaced runs at
    the wall-clock times asked for."""
    middle = (
        datetime(2024, 3, 31, 1, tzinfo=UTC)
        if europe_changes
        else datetime(2024, 10, 27, 1, tzinfo=UTC)
    )
    span = min(every * 3, timedelta(days=3))
    window = Window(middle - span, middle + span)
    with celery_app("Asia/Kolkata") as app:
        runs = simulate(app, crontab(**fields), window.start, window.end).runs
    assert len(runs) == 6
    assert {later - earlier for earlier, later in itertools.pairwise(runs)} == {every}
    tz = ZoneInfo("Asia/Kolkata")
    assert runs == redbeat_policy(
        "Asia/Kolkata",
        frozenset({int(fields["minute"])}) if "minute" in fields else None,
        frozenset({int(fields["hour"])}) if "hour" in fields else None,
        window,
    )
    if "hour" in fields:
        assert {f"{r.astimezone(tz):%H:%M}" for r in runs} == {"02:30"}
        assert {f"{r:%H:%M}" for r in runs} == {"21:00"}  # UTC: the app's zone is honoured


# ----------------------------------------------------------------------------- worked examples


def _change(name: str) -> Transition:
    (change,) = [t for t in ALL_TRANSITIONS if str(t) == name]
    return change


def _runs(zone: str, schedule: Any, start: datetime, end: datetime) -> list[str]:
    with celery_app(zone) as app:
        runs = simulate(app, schedule, start, end).runs
    tz = ZoneInfo(zone)
    return [f"{run.astimezone(tz):%m-%d %H:%M%z}" for run in runs]


def test_new_york_spring_forward_runs_the_skipped_time_at_three() -> None:
    change = _change("America/New_York-2024-03-10-spring-forward")
    start, end = change.at - timedelta(days=1, hours=6), change.at + timedelta(hours=20)
    nightly = crontab(minute=30, hour=2)
    assert _runs(change.zone, nightly, start, end) == ["03-09 02:30-0500", "03-10 03:00-0400"]
    assert _runs(change.zone, celery_crontab(minute=30, hour=2), start, end) == [
        "03-09 02:30-0500",
        "03-10 03:30-0400",  # Celery: as late as the gap is long
    ]


def test_new_york_fall_back_runs_the_repeated_time_once() -> None:
    change = _change("America/New_York-2024-11-03-fall-back")
    start, end = change.at - timedelta(days=1, hours=6), change.at + timedelta(days=1, hours=2)
    assert _runs(change.zone, crontab(minute=30, hour=1), start, end) == [
        "11-02 01:30-0400",
        "11-03 01:30-0400",  # not again at 01:30-0500
        "11-04 01:30-0500",
    ]


def test_minutely_through_a_fall_back_skips_the_second_pass() -> None:
    """Every wall-clock minute once: 01:00 to 01:59 run in summer time only, so no run for the
    hour the clock repeats (an interval schedule is the one that counts real time)."""
    change = _change("Europe/London-2024-10-27-fall-back")
    runs = _runs(
        change.zone,
        crontab(),
        change.at - timedelta(minutes=2),
        change.at + timedelta(hours=1, minutes=2),
    )
    assert runs == ["10-27 01:59+0100", "10-27 02:00+0000", "10-27 02:01+0000", "10-27 02:02+0000"]


def test_lord_howe_half_hour_gap() -> None:
    change = _change("Australia/Lord_Howe-2024-10-06-spring-forward")
    start, end = change.at - timedelta(hours=2), change.at + timedelta(hours=1)
    assert _runs(change.zone, crontab(minute=0), start, end) == [
        "10-06 01:00+1030",
        "10-06 02:30+1100",  # 02:00 does not exist: the first instant after the gap
        "10-06 03:00+1100",
    ]
    day = _runs(change.zone, crontab(minute=15, hour=2), start - timedelta(days=1), end)
    assert day == ["10-05 02:15+1030", "10-06 02:30+1100"]


def test_sao_paulo_midnight_that_did_not_exist() -> None:
    """2018-11-04 began at 01:00: the midnight run is at 01:00."""
    change = _change("America/Sao_Paulo-2018-11-04-spring-forward")
    start, end = change.at - timedelta(days=1, hours=1), change.at + timedelta(days=1)
    assert _runs(change.zone, crontab(minute=0, hour=0), start, end) == [
        "11-03 00:00-0300",
        "11-04 01:00-0200",
        "11-05 00:00-0200",
    ]


def test_sao_paulo_after_dst_was_abolished() -> None:
    """Under the old rules Sao Paulo would have skipped midnight on 2019-11-03; it did not."""
    start = datetime(2019, 11, 2, 12, tzinfo=UTC)
    assert _runs(
        "America/Sao_Paulo", crontab(minute=0, hour=0), start, start + timedelta(days=3)
    ) == [
        "11-03 00:00-0300",
        "11-04 00:00-0300",
        "11-05 00:00-0300",
    ]


def test_moscow_kept_summer_time_in_2011() -> None:
    """The last change of 2011 was the spring forward: no fall back on 2011-10-30."""
    start = datetime(2011, 10, 28, 12, tzinfo=UTC)
    assert _runs("Europe/Moscow", crontab(minute=30, hour=2), start, start + timedelta(days=3)) == [
        "10-29 02:30+0400",
        "10-30 02:30+0400",
        "10-31 02:30+0400",
    ]


# ----------------------------------------------------------------------------- the app's zone


def test_the_zone_defaults_to_the_apps_timezone_setting() -> None:
    with celery_app("Asia/Kolkata") as app:
        schedule = crontab(minute=30, hour=2, app=app)
        assert schedule.zone is None
        assert schedule.tz == ZoneInfo("Asia/Kolkata")
        own = crontab(minute=30, hour=2, tz="Europe/London", app=app)
        assert own.tz == ZoneInfo("Europe/London")
    start = datetime(2024, 6, 1, tzinfo=UTC)
    for zone, utc in (("Asia/Kolkata", "21:00"), ("Europe/London", "01:30"), ("UTC", "02:30")):
        with celery_app(zone) as app:
            runs = simulate(app, crontab(minute=30, hour=2), start, start + timedelta(days=1)).runs
        assert [f"{run:%H:%M}" for run in runs] == [utc], zone
