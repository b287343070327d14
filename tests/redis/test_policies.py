"""Scheduling policies on a real server: set through the schedule API, the commands and apply
files, shown by ``show``/``next``, and obeyed by a real scheduler's ticks (misfire, catch-up
with its due times, idempotent task ids, bounds), with every skip in the history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery.schedules import crontab, schedule
from redbeat_test_support import ago

from redbeat import EntryState, InvalidEntryError, RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_core.exceptions import RedBeatError
from redbeat_core.idempotency import task_id_for
from redbeat_core.model import EntryPolicy
from redbeat_core.policy import jitter_offset


def save(app: Any, name: str, sched: Any, *, last: datetime | None, **policy: Any) -> Any:
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", sched, app=app, policy=policy or None)
    entry.last_run_at = last
    return entry.save()


def one_tick(app: Any) -> None:
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
    finally:
        scheduler.close()


# ------------------------------------------------------------------------- the API


def test_a_policy_is_set_merged_reset_and_kept_across_pause(app: Any) -> None:
    api = Schedule(app)
    info = api.add("job", "tasks.add", 60, policy={"misfire": "skip", "jitter": 5})
    assert dict(info.policy) == {"misfire": "skip", "jitter": 5}
    info = api.set_policy("job", starting_deadline=30, jitter=None)
    assert dict(info.policy) == {"misfire": "skip", "starting_deadline": 30}
    api.pause("job", "maintenance")
    info = api.resume("job")
    assert dict(info.policy) == {"misfire": "skip", "starting_deadline": 30}
    info = api.update("job", schedule=120)  # a definition change keeps the policy
    assert info.policy["misfire"] == "skip"
    assert info.to_json()["policy"] == {"misfire": "skip", "starting_deadline": 30}
    with pytest.raises(InvalidEntryError, match=r"policy\.misfire 'later'"):
        api.set_policy("job", misfire="later")
    assert next(record.action for record in api.audit(2)) == "update"


def test_next_shows_the_jittered_times_and_stops_at_the_bounds(app: Any) -> None:
    api = Schedule(app)
    now = datetime.now(UTC).replace(microsecond=0)
    save(app, "spread", crontab(minute=0), last=now, jitter=600)
    runs = api.next_runs("spread", 3)
    top = (now + timedelta(hours=1)).replace(minute=0, second=0)
    nominal = [top + timedelta(hours=k) for k in range(3)]
    expected = [t.timestamp() + jitter_offset("spread", t.timestamp(), 600) for t in nominal]
    assert [r.timestamp() for r in runs] == pytest.approx(expected, abs=1e-3)
    assert runs[0] == api.get("spread").next_run  # the stored next run is the real one

    entry = save(app, "thrice", schedule(60), last=now, max_runs=3)
    entry.total_run_count = 1
    entry.reschedule(now)
    assert len(api.next_runs("thrice", 10)) == 2
    save(app, "ending", schedule(60), last=now, end_at=now + timedelta(minutes=3, seconds=30))
    assert len(api.next_runs("ending", 10)) == 3


def test_a_finished_entry_is_listed_as_finished_with_the_reason(app: Any) -> None:
    entry = save(app, "done", schedule(60), last=ago(10), max_runs=2)
    entry.total_run_count = 2
    entry.reschedule(ago(10))
    info = Schedule(app).get("done")
    assert info.state is EntryState.FINISHED
    assert info.reason == "it ran 2 times (max_runs=2)"
    assert Schedule(app).next_runs("done") == []


# ------------------------------------------------------------------------- the tick


def test_a_misfire_skip_is_not_published_and_is_in_the_history(app: Any, sent: list[Any]) -> None:
    save(app, "skipper", schedule(600), last=ago(7200), misfire="skip")
    save(app, "plain", schedule(600), last=ago(7200))
    one_tick(app)
    assert [h["task"] for h in sent] == ["tasks.plain"]  # Celery's behaviour: once
    one_tick(app)  # the next claim writes the history held by the first tick
    (record,) = Schedule(app).history("skipper")
    assert record.outcome == "skipped"
    assert "misfire: " in (record.reason or "")
    assert (record.reason or "").endswith("(plugin redbeat.policies)")
    next_run = Schedule(app).get("skipper").next_run
    assert next_run is not None
    assert next_run > datetime.now(UTC) + timedelta(seconds=590)  # the next future due time


def test_run_all_publishes_each_missed_run_with_its_due_time(app: Any, sent: list[Any]) -> None:
    last = ago(185)
    save(app, "backfill", schedule(60), last=last, misfire="run_all")
    one_tick(app)
    dues = [(last + timedelta(seconds=60 * k)).isoformat() for k in (1, 2, 3)]
    assert [h["task"] for h in sent] == ["tasks.backfill"] * 3
    assert [h.get("redbeat_due_at") for h in sent] == dues
    info = Schedule(app).get("backfill")
    assert info.total_run_count == 3
    assert info.last_run_at == last + timedelta(seconds=180)


def test_idempotent_task_ids_are_the_same_for_the_same_run(
    make_app: Any, client: Any, sent: list[Any]
) -> None:
    app = make_app(redbeat_idempotent_task_ids=True)
    save(app, "once-per-due", schedule(60), last=ago(61))
    key = "redbeat:once-per-due"
    score = client.zscore("redbeat::schedule", key)
    meta = client.hget(key, "meta")
    one_tick(app)
    (headers,) = sent
    assert headers["id"] == task_id_for(key, score)
    # The same run published again by the next leader (at-least-once, after a beat died
    # between its publish and its commit): the entry is stored as before the tick.
    client.hset(key, "meta", meta)
    client.zadd("redbeat::schedule", {key: score})
    one_tick(app)
    assert [h["id"] for h in sent] == [headers["id"]] * 2
    # The next run of the entry is another run, with another id.
    client.zadd("redbeat::schedule", {key: score - 60})
    client.hset(key, "meta", json.dumps({"last_run_at": None, "total_run_count": 0}))
    one_tick(app)
    assert sent[2]["id"] != headers["id"]


def test_a_bounded_entry_waits_for_its_start_and_finishes_after_max_runs(
    app: Any, sent: list[Any]
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    save(app, "later", schedule(60), last=None, start_at=start)
    next_run = Schedule(app).get("later").next_run
    assert next_run is not None
    assert next_run.timestamp() == pytest.approx(start.timestamp(), abs=1e-3)
    save(app, "last-one", schedule(60), last=ago(61), max_runs=1)
    one_tick(app)
    assert [h["task"] for h in sent] == ["tasks.last-one"]
    assert Schedule(app).get("last-one").state is EntryState.FINISHED


# ------------------------------------------------------------------------- statics


def test_a_refused_static_pauses_the_stored_one_until_it_is_fixed(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    good = {"report": {"task": "tasks.report", "schedule": 60.0}}
    RedBeatScheduler(app=make_app(beat_schedule=good)).close()
    bad = {"report": {"task": "tasks.report", "schedule": -5}}
    app = make_app(beat_schedule=bad)
    RedBeatScheduler(app=app).close()
    info = Schedule(app).get("report")
    assert info.state is EntryState.PAUSED
    assert info.reason is not None
    assert info.reason.startswith("its new definition in beat_schedule was refused:")
    assert "Its stored definition is paused until then" in caplog.text
    fixed = make_app(beat_schedule={"report": {"task": "tasks.report", "schedule": 120.0}})
    RedBeatScheduler(app=fixed).close()
    assert Schedule(fixed).get("report").state is EntryState.SCHEDULED


def test_a_static_with_a_policy_keeps_an_operators_pause_across_restarts(make_app: Any) -> None:
    statics = {"report": {"task": "tasks.report", "schedule": 60.0, "policy": {"jitter": 5}}}
    app = make_app(beat_schedule=statics)
    RedBeatScheduler(app=app).close()
    assert dict(Schedule(app).get("report").policy) == {"jitter": 5}
    Schedule(app).pause("report", "investigating")
    RedBeatScheduler(app=make_app(beat_schedule=statics)).close()
    info = Schedule(app).get("report")
    assert (info.state, info.reason) == (EntryState.PAUSED, "investigating")


# ------------------------------------------------------------------------- commands


def test_an_entry_model_policy_round_trips_through_storage(app: Any) -> None:
    policy = EntryPolicy(misfire="run_all", starting_deadline=90, max_runs=10)
    RedBeatSchedulerEntry("m", "tasks.m", schedule(60), app=app, policy=policy).save()
    assert RedBeatSchedulerEntry.from_key("redbeat:m", app=app).policy == policy


# ------------------------------------------------------------------------- stored calendars


def test_a_stored_calendar_is_listed_obeyed_and_deleted(
    make_app: Any, sent: list[dict[str, Any]]
) -> None:
    app = make_app(redbeat_calendars={"nightly": {"cron": "* 2-3 * * *"}})
    api = Schedule(app)
    now = datetime.now(UTC)
    window = [(now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()]
    info = api.set_calendar("freeze", {"between": [window], "tz": "UTC"})
    assert (info.source, info.text.endswith("(UTC)")) == ("stored", True)
    assert [(c.name, c.source) for c in api.calendars()] == [
        ("freeze", "stored"),
        ("nightly", "settings"),
    ]
    save(app, "frozen", schedule(60), last=ago(61), blackouts=["freeze"])
    save(app, "free", schedule(60), last=ago(61), blackouts=["nightly"])
    one_tick(app)
    assert [h["task"] for h in sent] == ["tasks.free"]
    with pytest.raises(RedBeatError, match="declared in redbeat_calendars"):
        api.set_calendar("nightly", {"cron": "* * * * *"})
    with pytest.raises(RedBeatError, match=r"blackout calendar 'bad': .*not a crontab"):
        api.set_calendar("bad", {"cron": "* *"})
    api.delete_calendar("freeze")
    assert [c.name for c in api.calendars()] == ["nightly"]
    with pytest.raises(InvalidEntryError, match=r"policy\.blackouts 'freeze'"):
        save(app, "later", schedule(60), last=None, blackouts=["freeze"])
    actions = [r.action for r in api.audit(5)]
    assert actions[0] == "delete calendar"
    assert "set calendar" in actions
