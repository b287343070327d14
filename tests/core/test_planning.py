"""The tick's pure steps, without any server: ``plan_tick`` and ``settle`` are functions of the
claimed records, the codec, the app and an explicit clock.

The records are built as a store would return them (the entry API encodes them; nothing is
saved), and the app's own clock is made to fail: planning must read only the clock it is given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, schedule

from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.planning import Plan, TickTime, plan_tick, settle
from redbeat_core.runs import Decision, DueRuns
from redbeat_core.runtime import get_runtime
from redbeat_core.typing import EntryUpdate, StoredEntry

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
T = NOW.timestamp()


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("planning", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="teststore://nowhere")
    yield app
    app.close()


def no_clock() -> datetime:
    raise AssertionError("planning read the app's clock")


def record(
    app: Celery, name: str, sched: Any, *, last: datetime | None, score: float, **kw: Any
) -> StoredEntry:
    """What a store returns for an entry: its encoded parts and its score."""
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", sched, app=app, **kw)
    entry.last_run_at = last
    stored = entry.to_stored(NOW)
    return StoredEntry(name, stored.definition, stored.meta, stored.policy, score)


def plan(app: Celery, *records: StoredEntry, now: float = T, **kw: Any) -> Plan:
    """``plan_tick`` with the app's clock failing: it may read only the clock it is given."""
    codec = get_runtime(app).codec
    clock, app.now = app.now, no_clock  # type: ignore[method-assign]
    try:
        return plan_tick(
            records,
            app=app,
            codec=codec,
            time=TickTime(now=now, schedule_now=NOW + timedelta(seconds=now - T)),
            entry_class=RedBeatSchedulerEntry,
            **kw,
        )
    finally:
        app.now = clock  # type: ignore[method-assign]


def test_a_due_entry_becomes_a_run_judged_at_the_ticks_instant(app: Celery) -> None:
    due = record(app, "due", schedule(60), last=NOW - timedelta(seconds=61), score=T - 1)
    result = plan(app, due)
    (planned,) = result.runs
    assert planned.name == "due"
    assert planned.run.due_at == T - 1
    assert planned.ran_at == NOW
    assert planned.next_score == pytest.approx(T + 60)
    assert (result.updates, result.quarantine) == ((), ())


def test_an_entry_prepared_ahead_is_judged_at_its_own_due_time(app: Celery) -> None:
    minutely = record(app, "minutely", crontab(), last=NOW - timedelta(minutes=1), score=T + 0.04)
    (planned,) = plan(app, minutely, now=T - 0.01).runs  # claimed 50 ms ahead of :00
    assert planned.ran_at == NOW + timedelta(seconds=0.04)
    assert planned.run.due_at == T + 0.04


def test_what_does_not_run_gets_its_update(app: Celery) -> None:
    early = record(app, "early", schedule(60), last=NOW - timedelta(seconds=30), score=T - 1)
    off = record(app, "off", schedule(60), last=None, score=T - 1, enabled=False)
    gone = StoredEntry("gone", None, None, None, T - 1)
    result = plan(app, early, off, gone)
    assert result.runs == ()
    assert result.missing == ("gone",)
    by_name = {u.name: u for u in result.updates}
    # Not due after all (a whole-second score, skew): the precise due time is stored.
    assert by_name["early"] == EntryUpdate("early", None, pytest.approx(T + 30))
    assert by_name["off"] == EntryUpdate("off", None, None)  # disabled: leaves the schedule
    assert by_name["gone"] == EntryUpdate("gone", None, None)


def test_bad_entries_are_quarantined_with_the_reason(app: Celery) -> None:
    broken = StoredEntry("broken", "{not json", None, None, T - 1)
    unknown = record(app, "unknown", schedule(60), last=None, score=T - 1)
    result = plan(app, broken, unknown, strict_tasks=True)
    reasons = {q.name: q.reason for q in result.quarantine}
    assert reasons["broken"].startswith("definition is not valid JSON")
    assert "'tasks.unknown' is not registered" in reasons["unknown"]
    assert result.runs == ()


def test_a_schedule_that_raises_is_quarantined(app: Celery) -> None:
    class Broken(schedule):  # type: ignore[misc]
        def is_due(self, last_run_at: datetime) -> Any:
            raise ZeroDivisionError("bad maths")

    codec = get_runtime(app).codec
    codec.register_type("test.broken", Broken, lambda s: {}, lambda f: Broken(60))
    stored = record(app, "raises", Broken(60), last=NOW, score=T - 1)
    result = plan(app, stored)
    assert [(q.name, q.reason) for q in result.quarantine] == [
        ("raises", "cannot compute its next run: ZeroDivisionError('bad maths')")
    ]
    assert (result.runs, result.updates) == ((), ())


@pytest.mark.parametrize(
    ("schedule_json", "meta", "error"),
    [
        # dateutil accepts the rule and fails on the first occurrence it computes.
        ('{"__type__": "rrule", "freq": 9, "dtstart": 1577836800}', None, "KeyError"),
        # A last run in the year 9999: the next one is past datetime's range.
        (
            '{"__type__": "interval", "every": 86400.0, "relative": false}',
            '{"last_run_at": {"__type__": "datetime", "year": 9999, "month": 12, "day": 31, '
            '"hour": 0, "minute": 0, "second": 0, "microsecond": 0, "timezone": "UTC"}, '
            '"total_run_count": 1}',
            "OverflowError",
        ),
    ],
)
def test_errors_planning_an_entry_quarantine_it(
    app: Celery, schedule_json: str, meta: str | None, error: str
) -> None:
    """Found retried forever, with a traceback every 5 minutes, before: an entry whose
    schedule's arithmetic fails is quarantined with the error as its reason."""
    definition = (
        f'{{"name": "bad", "task": "tasks.bad", "args": [], "kwargs": {{}}, "options": {{}}, '
        f'"schedule": {schedule_json}, "enabled": true}}'
    )
    result = plan(app, StoredEntry("bad", definition, meta, None, T - 1))
    ((quarantined),) = result.quarantine
    assert quarantined.name == "bad"
    assert quarantined.reason.startswith(f"cannot compute its next run: {error}(")
    assert (result.runs, result.updates) == ((), ())


def test_the_definition_name_does_not_change_the_key_updated(app: Celery) -> None:
    stored = record(app, "real", schedule(60), last=None, score=T - 1)
    definition = json.loads(stored.definition or "")
    definition["name"] = "claims-another"
    renamed = StoredEntry("real", json.dumps(definition), stored.meta, None, T - 1)
    settled = settle(plan(app, renamed), {}, codec=get_runtime(app).codec)
    assert [u.name for u in settled.updates] == ["real"]


def test_planning_is_pure(app: Celery) -> None:
    due = record(app, "due", schedule(60), last=NOW - timedelta(seconds=61), score=T - 1)
    first, second = plan(app, due), plan(app, due)
    assert [(p.name, p.run.due_at, p.ran_at, p.next_score) for p in first.runs] == [
        (p.name, p.run.due_at, p.ran_at, p.next_score) for p in second.runs
    ]
    settled = settle(first, {}, codec=get_runtime(app).codec)
    entry = first.runs[0].run.entry
    assert (entry.last_run_at, entry.total_run_count) == (NOW - timedelta(seconds=61), 0)
    (_, stamped, due_at) = settled.publish[0]
    assert stamped is not entry
    assert (stamped.last_run_at, stamped.total_run_count, due_at) == (NOW, 1, T - 1)


def test_settle_runs_skips_and_postpones(app: Celery) -> None:
    last = NOW - timedelta(seconds=61)
    records = [record(app, n, schedule(60), last=last, score=T - 1) for n in ("a", "b", "c")]
    planned = plan(app, *records)
    runs = DueRuns([p.run for p in planned.runs], now=T)
    _, b, c = runs
    assert runs.skip(b, "maintenance window")
    assert runs.postpone(c, T + 600, "wait for the import")
    assert not runs.skip(c, "too late: postponed already")  # the first decision stands
    settled = settle(planned, runs.decided, codec=get_runtime(app).codec)

    assert [(name, due) for name, _, due in settled.publish] == [("a", T - 1)]
    updates = {u.name: u for u in settled.updates}
    meta = {name: json.loads(updates[name].meta or "") for name in ("a", "b")}
    assert meta["a"]["total_run_count"] == 1
    assert meta["b"]["total_run_count"] == 0  # a skip is not a run...
    assert meta["b"]["last_run_at"] == meta["a"]["last_run_at"]  # ...but the schedule moves on
    assert updates["b"].score == updates["a"].score == pytest.approx(T + 60)
    assert updates["c"] == EntryUpdate("c", None, T + 600)  # meta kept, due again then
    skipped = {s.entry.name: s.decision for s in settled.skipped}
    assert skipped == {
        "b": Decision("skip", "maintenance window", None),
        "c": Decision("postpone", "wait for the import", None, T + 600),
    }


def test_decisions_are_checked(app: Celery) -> None:
    planned = plan(app, record(app, "a", schedule(60), last=None, score=T - 1))
    runs = DueRuns([p.run for p in planned.runs], now=T)
    (run,) = runs
    with pytest.raises(ValueError, match="after now"):
        runs.postpone(run, T - 5, "into the past")
    with pytest.raises(ValueError, match="needs a reason"):
        runs.skip(run, "  ")
    other = plan(app, record(app, "b", schedule(60), last=None, score=T - 1)).runs[0].run
    with pytest.raises(ValueError, match="not one of this tick's due runs"):
        runs.skip(other, "not mine")
    assert runs.decision(run) is None
