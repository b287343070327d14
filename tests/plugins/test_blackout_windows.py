"""The blackout example plugin's pure parts, with explicit instants and no server: parsing the
settings, where an instant falls, when a blackout ends (across midnight and daylight-saving
changes), and the decision it makes about a tick's due runs.

The plugin must be installed (see ``test_blackout_example.py``)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

INSTALL_LINE = "uv pip install --python .venv/bin/python ./examples/redbeat-blackout"
if importlib.util.find_spec("redbeat_blackout") is None:
    if os.environ.get("CI"):
        pytest.fail(f"redbeat-blackout is not installed; run: {INSTALL_LINE}", pytrace=False)
    pytest.skip(f"redbeat-blackout is not installed; run: {INSTALL_LINE}", allow_module_level=True)

from celery import Celery  # noqa: E402
from celery.schedules import schedule  # noqa: E402
from redbeat_blackout import (  # noqa: E402
    DAY,
    Blackout,
    Window,
    blackout_end,
    covers_whole_day,
    parse_entries,
    parse_timezone,
    parse_window,
    parse_windows,
    window_at,
)

from redbeat_core import DueRun, DueRuns, InvalidValue, RedBeatSchedulerEntry, Settings  # noqa: E402

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, zone: tzinfo = UTC) -> float:
    """Unix seconds of the wall-clock time ``text`` (ISO, no offset) in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def windows(*texts: str) -> tuple[Window, ...]:
    return tuple(parse_window(text) for text in texts)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "start", "end", "shown"),
    [
        ("22:00-06:00", 22 * 3600, 6 * 3600, "22:00-06:00"),
        (" 9:05 - 17:30:15 ", 9 * 3600 + 300, 17 * 3600 + 1815, "09:05-17:30:15"),
        ("00:00-24:00", 0, DAY, "00:00-24:00"),
        ("22:00-00:00", 22 * 3600, 0, "22:00-00:00"),
        ("23:59:59-24:00", DAY - 1, DAY, "23:59:59-24:00"),
    ],
)
def test_parse_window(text: str, start: int, end: int, shown: str) -> None:
    window = parse_window(text)
    assert (window.start, window.end) == (start, end)
    assert str(window) == shown


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("22:00", "is not start-end"),
        ("22h-6h", "is not start-end"),
        ("22:00-06:00-07:00", "is not start-end"),
        ("24:00-06:00", "not a time of day"),  # 24:00 only ends a window
        ("22:60-06:00", "not a time of day"),
        ("22:00-06:00:60", "not a time of day"),
        ("24:30-06:00", "not a time of day"),
        ("06:00-06:00", "is empty"),
        ("00:00-00:00", "is empty"),
    ],
)
def test_parse_window_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_window(text)


def test_parse_windows_takes_a_list_or_a_comma_separated_string() -> None:
    expected = windows("22:00-06:00", "12:00-12:30")
    assert parse_windows(["22:00-06:00", "12:00-12:30"]) == expected
    assert parse_windows(("22:00-06:00", "12:00-12:30")) == expected
    assert parse_windows("22:00-06:00, 12:00-12:30") == expected
    assert parse_windows([]) == parse_windows("") == ()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (22, "a list of daily windows"),
        ([22], "a list of daily windows"),
        ({"22:00": "06:00"}, "a list of daily windows"),
        (["22:00-06:00", "noon"], "'noon' is not start-end"),
    ],
)
def test_parse_windows_says_what_is_accepted_and_what_is_wrong(value: Any, why: str) -> None:
    with pytest.raises(InvalidValue, match=why) as info:
        parse_windows(value)
    assert "such as ['22:00-06:00']" in info.value.accepted


def test_parse_entries() -> None:
    assert parse_entries(["maint-*", "reindex-?"]) == ("maint-*", "reindex-?")
    assert parse_entries(" maint-*, reindex-? ") == ("maint-*", "reindex-?")
    for bad in (["maint-*", ""], ["  "], 3, [None]):
        with pytest.raises(InvalidValue, match="globs of entry names"):
            parse_entries(bad)


def test_parse_timezone() -> None:
    assert parse_timezone("Europe/Paris") == PARIS
    fixed = timezone(timedelta(hours=2))
    assert parse_timezone(fixed) is fixed
    for bad in ("Mars/Olympus", "../etc/passwd", "", 2):
        with pytest.raises(InvalidValue, match="IANA time zone name"):
            parse_timezone(bad)


# ----------------------------------------------------------------------------- where instants fall


@pytest.mark.parametrize(
    ("wall", "inside"),
    [
        ("2025-01-15T21:59:59.999", False),
        ("2025-01-15T22:00:00", True),  # the start is inside
        ("2025-01-15T23:59:59", True),
        ("2025-01-16T00:00:00", True),
        ("2025-01-16T05:59:59.999", True),
        ("2025-01-16T06:00:00", False),  # the end is not
        ("2025-01-16T12:00:00", False),
    ],
)
def test_a_window_crossing_midnight(wall: str, inside: bool) -> None:
    night = windows("22:00-06:00")
    assert (window_at(night, at(wall), UTC) is not None) is inside


def test_windows_are_read_in_their_time_zone() -> None:
    lunch = windows("12:00-13:00")
    noon_in_paris = at("2025-01-15T12:30", PARIS)  # 11:30 UTC (CET is UTC+1 in January)
    assert window_at(lunch, noon_in_paris, PARIS) == lunch[0]
    assert window_at(lunch, noon_in_paris, UTC) is None


def test_the_first_matching_window_is_reported() -> None:
    both = windows("10:00-14:00", "12:00-13:00")
    assert window_at(both, at("2025-01-15T12:30"), UTC) == both[0]
    assert window_at(both, at("2025-01-15T15:00"), UTC) is None
    assert window_at((), at("2025-01-15T12:30"), UTC) is None


# ----------------------------------------------------------------------------- when it ends


@pytest.mark.parametrize(
    ("spec", "wall", "end"),
    [
        (("12:00-13:00",), "2025-01-15T12:30", "2025-01-15T13:00"),
        (("22:00-06:00",), "2025-01-15T23:00", "2025-01-16T06:00"),  # entered in the evening
        (("22:00-06:00",), "2025-01-16T01:00", "2025-01-16T06:00"),  # after midnight
        (("22:00-24:00",), "2025-01-15T23:00", "2025-01-16T00:00"),
        (("22:00-00:00",), "2025-01-15T23:00", "2025-01-16T00:00"),
        (("22:00-23:00", "23:00-01:00"), "2025-01-15T22:10", "2025-01-16T01:00"),  # touching
        (("01:00-03:00", "22:00-02:00"), "2025-01-15T23:00", "2025-01-16T03:00"),  # overlapping
        (("12:00-13:00",), "2025-01-15T14:00", "2025-01-15T14:00"),  # not in one: now
    ],
)
def test_blackout_end(spec: tuple[str, ...], wall: str, end: str) -> None:
    assert blackout_end(windows(*spec), at(wall), UTC) == at(end)


def test_across_daylight_saving_changes_windows_follow_the_wall_clock() -> None:
    night = windows("01:00-04:00")
    # 30 March 2025, Paris: 02:00 CET becomes 03:00 CEST; the window lasts two hours.
    spring = at("2025-03-30T00:30")  # 01:30 CET
    assert window_at(night, spring, PARIS) is not None
    assert blackout_end(night, spring, PARIS) == at("2025-03-30T02:00")  # 04:00 CEST
    # 26 October 2025: 03:00 CEST becomes 02:00 CET; it lasts four hours.
    autumn = at("2025-10-25T23:30")  # 01:30 CEST
    assert blackout_end(night, autumn, PARIS) == at("2025-10-26T03:00")  # 04:00 CET


@pytest.mark.parametrize(
    ("spec", "covered"),
    [
        (("00:00-24:00",), True),
        (("22:00-06:00", "06:00-22:00"), True),
        (("00:00-12:00", "11:00-24:00"), True),
        (("12:00-12:00:01", "12:00:01-12:00"), True),
        (("22:00-06:00", "06:00:01-22:00"), False),
        (("22:00-06:00",), False),
        ((), False),
    ],
)
def test_covers_whole_day(spec: tuple[str, ...], covered: bool) -> None:
    assert covers_whole_day(windows(*spec)) is covered


# ----------------------------------------------------------------------------- the decision


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("blackout-decisions", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="redis://127.0.0.1:1/0")
    try:
        yield app
    finally:
        app.close()


def due_runs(app: Celery, now: float, **due: float) -> DueRuns:
    """``DueRuns`` for entries named by the keywords, each due at its value (building an entry
    opens no connection)."""
    runs = [
        DueRun(RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(60), app=app), due_at)
        for name, due_at in due.items()
    ]
    return DueRuns(runs, now=now)


def decisions(runs: DueRuns) -> dict[str, tuple[str, str, float | None] | None]:
    found: dict[str, tuple[str, str, float | None] | None] = {}
    for run in runs:
        decision = runs.decision(run)
        if decision is None:
            found[run.name] = None
        else:
            found[run.name] = (decision.action, decision.reason, decision.until)
    return found


NIGHT = Blackout(windows=windows("22:00-06:00"), entries=("maint-*", "reindex"), zone=UTC)


def test_a_matching_run_in_a_window_is_skipped_with_the_window_as_reason(app: Celery) -> None:
    now = at("2025-01-15T23:00")
    runs = due_runs(app, now, **{"maint-vacuum": now, "reindex": now, "report": now})
    NIGHT.decide(runs)
    reason = "blackout window 22:00-06:00 (UTC), entries {!r}"
    assert decisions(runs) == {
        "maint-vacuum": ("skip", reason.format("maint-*"), None),
        "reindex": ("skip", reason.format("reindex"), None),
        "report": None,
    }


def test_globs_are_case_sensitive_as_entry_names_are(app: Celery) -> None:
    now = at("2025-01-15T23:00")
    runs = due_runs(app, now, **{"Maint-vacuum": now, "reindex-2": now})
    NIGHT.decide(runs)
    assert decisions(runs) == {"Maint-vacuum": None, "reindex-2": None}


def test_a_run_is_judged_when_it_would_be_published(app: Celery) -> None:
    """An overdue run (due before the window, the beat was down) would go out now, inside
    it; a run prepared ahead goes out at its due time."""
    now = at("2025-01-15T22:00:30")
    ahead = at("2025-01-15T21:59:59.98")
    runs = due_runs(
        app,
        ahead,
        **{"maint-overdue": at("2025-01-15T20:00"), "maint-ahead": at("2025-01-15T22:00")},
    )
    NIGHT.decide(runs)
    assert decisions(runs)["maint-overdue"] is None  # published at 21:59:59.98: before
    assert decisions(runs)["maint-ahead"] is not None  # published at 22:00: inside
    runs = due_runs(app, now, **{"maint-overdue": at("2025-01-15T20:00")})
    NIGHT.decide(runs)
    assert decisions(runs)["maint-overdue"] is not None


def test_postpone_moves_the_run_to_the_end_of_the_blackout(app: Celery) -> None:
    blackout = Blackout(
        windows=windows("22:00-23:00", "23:00-01:00"),
        entries=("*",),
        action="postpone",
        zone=PARIS,
    )
    now = at("2025-01-15T22:30", PARIS)
    runs = due_runs(app, now, nightly=now)
    blackout.decide(runs)
    (decided,) = decisions(runs).values()
    assert decided == (
        "postpone",
        "blackout window 22:00-23:00 (Europe/Paris), entries '*'; "
        "runs at 2025-01-16 01:00:00+01:00",
        at("2025-01-16T01:00", PARIS),
    )


def test_an_earlier_decision_stands(app: Celery) -> None:
    now = at("2025-01-15T23:00")
    runs = due_runs(app, now, **{"maint-vacuum": now})
    (run,) = runs
    runs.postpone(run, now + 60, "another plugin's reason")
    NIGHT.decide(runs)
    assert decisions(runs)["maint-vacuum"] == ("postpone", "another plugin's reason", now + 60)


def test_from_settings_and_enabled() -> None:
    assert not Blackout.from_settings(Settings.of()).enabled  # installed alone: off
    assert Blackout.from_settings(Settings.of()) == Blackout()
    blackout = Blackout.from_settings(
        Settings.of(
            redbeat_blackout_windows=windows("22:00-06:00"),
            redbeat_blackout_entries=("maint-*",),
            redbeat_blackout_action="postpone",
            redbeat_blackout_timezone=PARIS,
        )
    )
    assert blackout == Blackout(windows("22:00-06:00"), ("maint-*",), "postpone", PARIS)
    assert blackout.enabled
    assert blackout.describe() == "postpone runs of maint-* during 22:00-06:00 (Europe/Paris)"
