"""``redbeat.Schedule``: listing, looking up, previewing and changing the stored schedule, on a
real server (the operator's API the ``redbeat`` command and the dashboard stand on)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery.schedules import crontab, schedule
from redbeat_test_support import ago

from redbeat import (
    EntryNotFoundError,
    EntryState,
    InvalidEntryError,
    RedBeatScheduler,
    RedBeatSchedulerEntry,
    Schedule,
)
from redbeat_core.hookspecs import hookimpl
from redbeat_core.runtime import get_runtime
from redbeat_core.schedules import clocked


def seed(app: Any, client: Any) -> None:
    """One entry in each state."""
    RedBeatSchedulerEntry("every-30s", "tasks.add", schedule(30), args=[1, 2], app=app).save()
    RedBeatSchedulerEntry("nightly", "tasks.report", crontab(hour=3, minute=0), app=app).save()
    RedBeatSchedulerEntry("off", "tasks.add", schedule(60), app=app, enabled=False).save()
    once = RedBeatSchedulerEntry("once", "tasks.launch", clocked(ago(60)), app=app)
    once.last_run_at = ago(30)  # it ran: finished
    once.save()
    RedBeatSchedulerEntry("broken", "tasks.add", schedule(60), app=app).save()
    client.hset("redbeat:broken", "definition", "{not json")


def test_list_shows_every_entry_with_its_state(app: Any, client: Any) -> None:
    seed(app, client)
    listed = {info.name: info for info in Schedule(app).list()}
    assert {name: info.state for name, info in listed.items()} == {
        "broken": EntryState.QUARANTINED,
        "every-30s": EntryState.SCHEDULED,
        "nightly": EntryState.SCHEDULED,
        "off": EntryState.DISABLED,
        "once": EntryState.FINISHED,
    }
    every = listed["every-30s"]
    assert every.task == "tasks.add"
    assert every.schedule_text == "every 30 seconds"
    assert every.key == "redbeat:every-30s"
    assert every.next_run is not None
    assert abs(every.next_run.timestamp() - client.zscore("redbeat::schedule", every.key)) < 1e-3
    assert listed["nightly"].schedule_text == "at 03:00 every day (crontab 0 3 * * *)"
    assert listed["off"].next_run is None
    assert "not valid JSON" in (listed["broken"].reason or "")
    assert json.loads(json.dumps(every.to_json()))["args"] == [1, 2]


def test_list_filters_and_pages(app: Any, client: Any) -> None:
    seed(app, client)
    api = Schedule(app)
    assert [i.name for i in api.list(state="scheduled")] == ["every-30s", "nightly"]
    assert [i.name for i in api.list(match="o*")] == ["off", "once"]
    assert [i.name for i in api.list(task="tasks.r*")] == ["nightly"]
    assert [i.name for i in api.list(offset=1, limit=2)] == ["every-30s", "nightly"]
    with pytest.raises(ValueError, match="'sleeping' is not a valid EntryState"):
        api.list(state="sleeping")


def test_get_and_a_missing_name(app: Any, client: Any) -> None:
    seed(app, client)
    assert Schedule(app).get("off").state is EntryState.DISABLED
    with pytest.raises(EntryNotFoundError, match="no entry named 'nope'") as info:
        Schedule(app).get("nope")
    assert isinstance(info.value, KeyError)


def test_next_runs_are_the_schedules_own_answers(make_app: Any) -> None:
    app = make_app(timezone="Europe/Paris")
    api = Schedule(app)
    api.add("nightly", "tasks.report", crontab(hour=3, minute=0))
    runs = api.next_runs("nightly", 3)
    paris = [run.astimezone(app.timezone) for run in runs]
    assert [(r.hour, r.minute) for r in paris] == [(3, 0)] * 3
    assert [(b - a) for a, b in itertools.pairwise(paris)] == [timedelta(days=1)] * 2
    api.add("every", "tasks.add", 30)
    every = api.next_runs("every", 4)
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(every)] == [30] * 3
    api.add("once", "tasks.launch", clocked(datetime.now(UTC) + timedelta(hours=1)))
    assert len(api.next_runs("once", 5)) == 1


def test_add_update_enable_disable_delete(app: Any, client: Any) -> None:
    api = Schedule(app)
    added = api.add("job", "tasks.add", 30, args=[1])
    assert added.state is EntryState.SCHEDULED
    with pytest.raises(InvalidEntryError, match="replace=True"):
        api.add("job", "tasks.add", 30)
    assert api.update("job", schedule=timedelta(minutes=5)).schedule_text == "every 5 minutes"
    assert api.disable("job").state is EntryState.DISABLED
    assert client.zscore("redbeat::schedule", "redbeat:job") is None
    assert api.enable("job").state is EntryState.SCHEDULED
    api.delete("job")
    assert not client.exists("redbeat:job")
    with pytest.raises(EntryNotFoundError):
        api.delete("job")


def test_writes_are_checked_as_the_beat_checks_them(app: Any) -> None:
    api = Schedule(app)
    with pytest.raises(InvalidEntryError, match=r"entry 'bad'.*interval"):
        api.add("bad", "tasks.add", 0)
    api.add("good", "tasks.add", 30)
    with pytest.raises(InvalidEntryError, match="one of the fields task, schedule"):
        api.update("good", shedule=60)
    with pytest.raises(InvalidEntryError, match=r"entry 'good'.*args"):
        api.update("good", args={"a": 1})
    assert api.get("good").schedule_text == "every 30 seconds"  # nothing was written


def test_runs_survive_an_update(app: Any) -> None:
    entry = RedBeatSchedulerEntry("job", "tasks.add", schedule(30), app=app)
    entry.last_run_at = ago(10)
    entry.total_run_count = 7
    entry.save()
    after = Schedule(app).update("job", args=[2])
    assert after.total_run_count == 7
    assert after.args == (2,)


def test_writes_fire_the_entry_hooks(app: Any) -> None:
    seen: list[tuple[str, str]] = []

    class Recorder:
        @hookimpl
        def redbeat_entry_saved(self, app: Any, entry: Any) -> None:
            seen.append(("saved", entry.name))

        @hookimpl
        def redbeat_entry_deleted(self, app: Any, name: str) -> None:
            seen.append(("deleted", name))

    get_runtime(app).plugins.pm.register(Recorder())
    api = Schedule(app)
    api.add("job", "tasks.add", 30)
    api.disable("job")
    api.delete("job")
    assert seen == [("saved", "job"), ("saved", "job"), ("deleted", "job")]


def test_quarantine_and_restore(app: Any, client: Any) -> None:
    entry = RedBeatSchedulerEntry("job", "tasks.add", schedule(30), app=app)
    entry.last_run_at = ago(60)
    entry.save()
    good = client.hget("redbeat:job", "definition")
    client.hset("redbeat:job", "definition", "{not json")
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    api = Schedule(app)
    assert "job" in api.quarantine()
    with pytest.raises(Exception, match="not valid JSON"):
        api.restore("job")
    client.hset("redbeat:job", "definition", good)
    restored = api.restore("job")
    assert restored.state is EntryState.SCHEDULED
    assert api.quarantine() == {}


def test_export_and_import_round_trip(make_app: Any, redbeat_url: str) -> None:
    source = make_app()
    seed_app = Schedule(source)
    seed_app.add("every", "tasks.add", 30, args=[1], kwargs={"b": 2})
    seed_app.add("nightly", "tasks.report", crontab(hour=3, minute=0))
    seed_app.add("off", "tasks.add", 60, enabled=False)
    exported = json.loads(json.dumps(seed_app.export()))
    target = make_app(redbeat_key_prefix="copy:")
    assert Schedule(target).import_(exported) == 3
    copied = {info.name: info for info in Schedule(target).list()}
    assert {n: i.state for n, i in copied.items()} == {
        "every": EntryState.SCHEDULED,
        "nightly": EntryState.SCHEDULED,
        "off": EntryState.DISABLED,
    }
    assert copied["every"].kwargs == {"b": 2}


def test_import_checks_everything_before_writing(app: Any) -> None:
    exported = [
        {"name": "ok", "definition": {"name": "ok", "task": "t", "schedule": 30}},
        {"name": "bad", "definition": {"name": "bad", "task": "t", "schedule": 0}},
    ]
    with pytest.raises(InvalidEntryError, match="entry 'bad'"):
        Schedule(app).import_(exported)
    assert Schedule(app).names() == []


class CountingConnection(redis.Connection):
    """A real connection that counts what it sends: one send = one round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


def test_import_writes_a_chunk_per_round_trip_and_reports_progress(
    make_app: Any, redbeat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDBEAT_DISABLE_PLUGIN_AUTOLOAD", "1")  # only the core's round trips
    app = make_app()
    app.redbeat_redis = redis.Redis.from_url(
        redbeat_url, decode_responses=True, connection_class=CountingConnection
    )
    api = Schedule(app)
    item = {"definition": {"task": "tasks.add", "schedule": 30}}
    api.import_([{**item, "name": "warm"}])  # loads the write script outside the count
    seen: list[tuple[int, int]] = []
    before = CountingConnection.sent
    count = api.import_(
        [{**item, "name": f"e{i}"} for i in range(2500)], progress=lambda *p: seen.append(p)
    )
    assert CountingConnection.sent - before == 3 + 1  # a write per chunk, then the audit record
    assert count == 2500
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]
    assert len(api.names()) == 2501


def test_check_refuses_what_add_refuses_and_writes_nothing(app: Any) -> None:
    api = Schedule(app)
    api.check("fine", "tasks.add", 30, kwargs={"a": 1})
    with pytest.raises(InvalidEntryError, match="entry 'bad': invalid schedule every 0 s"):
        api.check("bad", "tasks.add", 0)
    with pytest.raises(InvalidEntryError, match="invalid task"):
        api.check("bad", "", 30)
    assert api.names() == []


def test_the_listing_walks_the_keys_without_blocking_on_many(app: Any, client: Any) -> None:
    """More entries than a page, half of them disabled (so not in the sorted set)."""
    api = Schedule(app)
    for i in range(600):
        api.add(f"e{i:03d}", "tasks.add", 30, enabled=i % 2 == 0)
    client.set("redbeat:not-an-entry", "a string under the prefix")
    names = api.names()
    assert len(names) == 600
    assert sum(1 for _ in api.entries(state="disabled")) == 300


def test_the_lock_keys_are_never_listed_as_entries(make_app: Any) -> None:
    app = make_app(redbeat_lock_key="redbeat:beatlock")
    api = Schedule(app)
    api.add("job", "tasks.add", 30)
    leader = RedBeatScheduler(app=app)
    try:
        leader.tick()  # writes redbeat:beatlock:holder, a hash under the prefix
    finally:
        leader.close()
    assert api.names() == ["celery.backend_cleanup", "job"]


def test_pause_and_resume(app: Any, client: Any) -> None:
    api = Schedule(app)
    api.add("job", "tasks.add", 30)
    paused = api.pause("job", "deploying", by="ops@host")
    assert (paused.state, paused.reason, paused.paused_by) == (
        EntryState.PAUSED,
        "deploying",
        "ops@host",
    )
    assert paused.paused_at is not None
    assert client.zscore("redbeat::schedule", "redbeat:job") is None  # costs no tick anything
    assert [i.name for i in api.list(state="paused")] == ["job"]
    scheduler = RedBeatScheduler(app=app)
    try:
        client.zadd("redbeat::schedule", {"redbeat:job": 1})  # re-added behind our back
        scheduler.tick()
        assert client.zscore("redbeat::schedule", "redbeat:job") is None  # taken out, not run
        assert api.get("job").total_run_count == 0
    finally:
        scheduler.close()
    resumed = api.resume("job")
    assert resumed.state is EntryState.SCHEDULED
    assert resumed.reason is None
    assert client.zscore("redbeat::schedule", "redbeat:job") is not None
    with pytest.raises(InvalidEntryError, match="a paused entry to resume"):
        api.resume("job")
    with pytest.raises(InvalidEntryError, match="reason"):
        api.pause("job", "  ")
