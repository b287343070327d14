"""Run history on a real server: what each tick records, in which delivery mode, with which
task id, beat and epoch, and what the schedule API and `redbeat history` show of it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery, Task
from celery.schedules import schedule
from celery.signals import before_task_publish

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_core import hookimpl
from redbeat_core.history import RunRecord
from redbeat_core.locks import beat_identity
from redbeat_core.runtime import get_runtime


@pytest.fixture
def published() -> Iterator[dict[str, str]]:
    """Task name -> task id of every publish while the test runs (Celery's own signal)."""
    found: dict[str, str] = {}

    def record(headers: Any = None, **_: Any) -> None:
        found[headers["task"]] = headers["id"]

    before_task_publish.connect(record, weak=False)
    try:
        yield found
    finally:
        before_task_publish.disconnect(record)


def due_entries(app: Celery, *names: str) -> None:
    """Entries that ran 45 s ago, every 30 s: due now (again, when they are stored)."""
    ran = datetime.now(UTC) - timedelta(seconds=45)
    for name in names:
        entry = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(30), app=app)
        entry.last_run_at = ran
        entry.save().reschedule(last_run_at=ran)


def one_tick(app: Celery) -> RedBeatScheduler:
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    return scheduler


@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once"])
def test_each_publish_is_recorded_with_its_task_id_beat_and_epoch(
    make_app: Callable[..., Celery], client: Any, published: dict[str, str], delivery: str
) -> None:
    app = make_app(redbeat_delivery=delivery)
    due_entries(app, "a", "b")
    epoch_before = int(client.get("redbeat::lock:epoch") or 0)
    one_tick(app)
    records = Schedule(app).history()
    assert sorted(r.name for r in records) == ["a", "b"]
    for record in records:
        assert record.outcome == "sent"
        assert record.task_id == published[f"tasks.{record.name}"]  # the id Celery sent
        assert record.beat == beat_identity()
        assert record.epoch == epoch_before + 1
        assert 0 <= record.lateness < 5
        assert not record.manual
    assert [r.task_id for r in Schedule(app).history("a")] == [published["tasks.a"]]


class Refusing(Task):  # type: ignore[misc]
    """A task whose publish fails, as with a broker that is down."""

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("broker down")


def job() -> None: ...


@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once"])
def test_a_failed_publish_is_recorded_with_the_error(
    make_app: Callable[..., Celery], delivery: str
) -> None:
    app = make_app(redbeat_delivery=delivery)
    app.task(name="tasks.down", base=Refusing, shared=False)(job)
    due_entries(app, "down", "up")
    one_tick(app)
    (down,) = Schedule(app).history("down")
    assert (down.outcome, down.reason) == ("failed", "ConnectionError: broker down")
    assert [r.outcome for r in Schedule(app).history("up")] == ["sent"]


def test_a_skip_by_a_plugin_is_recorded_with_its_reason(make_app: Callable[..., Celery]) -> None:
    app = make_app()

    class NoMaintenance:
        @hookimpl
        def redbeat_decide_runs(self, runs: Any) -> None:
            for run in runs:
                if run.name.startswith("maint-"):
                    runs.skip(run, "maintenance window")

    get_runtime(app).plugins.register(NoMaintenance(), name="no-maintenance")
    due_entries(app, "maint-vacuum", "report")
    one_tick(app)
    (skipped,) = Schedule(app).history("maint-vacuum")
    assert (skipped.outcome, skipped.reason) == (
        "skipped",
        "maintenance window (plugin no-maintenance)",
    )
    assert skipped.task_id is None
    assert [r.outcome for r in Schedule(app).history("report")] == ["sent"]


def test_history_is_bounded_per_entry_and_overall(make_app: Callable[..., Celery]) -> None:
    app = make_app(redbeat_history_per_entry=2, redbeat_history_total=3)
    for _ in range(3):
        due_entries(app, "a", "b")
        one_tick(app)
    assert len(Schedule(app).history("a", limit=10)) == 2
    assert len(Schedule(app).history(limit=10)) == 3


def test_history_off_records_nothing(make_app: Callable[..., Celery], client: Any) -> None:
    app = make_app(redbeat_history_per_entry=0, redbeat_history_total=0)
    due_entries(app, "a")
    one_tick(app)
    assert Schedule(app).history() == []
    assert not Schedule(app).keeps_history
    assert client.keys("redbeat::history*") == []


def test_per_entry_history_off_still_answers_from_the_schedules(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app(redbeat_history_per_entry=0)
    due_entries(app, "a", "b")
    one_tick(app)
    assert [r.name for r in Schedule(app).history("a")] == ["a"]


def test_deleting_an_entry_deletes_its_history(
    make_app: Callable[..., Celery], client: Any
) -> None:
    app = make_app()
    due_entries(app, "gone")
    one_tick(app)
    assert client.exists("redbeat::history:gone")
    Schedule(app).delete("gone")
    assert not client.exists("redbeat::history:gone")
    assert [r.name for r in Schedule(app).history()] == ["gone"]  # the schedule's keeps it


def test_records_another_program_broke_are_skipped(
    make_app: Callable[..., Celery], client: Any
) -> None:
    app = make_app()
    due_entries(app, "a")
    one_tick(app)
    client.lpush("redbeat::history:a", "not json", json.dumps({"outcome": "exploded"}))
    assert [r.outcome for r in Schedule(app).history("a")] == ["sent"]


def test_a_broken_history_key_never_stops_scheduling(
    make_app: Callable[..., Celery],
    client: Any,
    published: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """History is written last, with pcall: another program's string where the history list
    goes loses the records, not the tick, and the beat says which key and what to do, once."""
    app = make_app()
    client.set("redbeat::history:a", "not a list")
    due_entries(app, "a")
    with caplog.at_level(logging.ERROR):
        one_tick(app)
        due_entries(app, "a")
        one_tick(app)
    assert "tasks.a" in published
    assert client.zscore("redbeat::schedule", "redbeat:a") > time.time()  # it ran, moved on
    errors = [r.getMessage() for r in caplog.records if "run history" in r.getMessage()]
    assert len(errors) == 1  # once, until history is written again
    assert "(LPUSH redbeat::history:a: WRONGTYPE" in errors[0]
    assert "delete it (DEL redbeat::history:a)" in errors[0]
    assert [r.name for r in Schedule(app).history()] == ["a", "a"]  # the schedule's list works


def test_the_record_round_trips_and_leaves_defaults_out() -> None:
    record = RunRecord(name="a", outcome="sent", due_at=10.0, at=10.25)
    assert json.loads(record.to_json()) == {"name": "a", "outcome": "sent", "due_at": 10.0,
                                            "at": 10.25}  # fmt: skip
    assert RunRecord.from_json(record.to_json()) == record
    assert RunRecord.from_json('{"name": "a", "outcome": "sent", "due_at": "NaN", "at": 1}') is None


# ----------------------------------------------------------------------------- run now


def test_run_now_publishes_once_records_it_and_leaves_the_schedule(
    make_app: Callable[..., Celery], client: Any, published: dict[str, str]
) -> None:
    app = make_app()
    entry = RedBeatSchedulerEntry("nightly", "tasks.nightly", schedule(3600), app=app).save()
    score = client.zscore("redbeat::schedule", "redbeat:nightly")
    meta = client.hget("redbeat:nightly", "meta")
    Schedule(app).run_now("nightly", by="ops@bastion")
    Schedule(app).run_now("nightly", by="ops@bastion")  # twice before it ran: one run
    one_tick(app)
    assert list(published) == ["tasks.nightly"]
    (record,) = Schedule(app).history("nightly")
    assert (record.outcome, record.manual, record.reason) == (
        "sent",
        True,
        "run now, asked by ops@bastion",
    )
    assert record.task_id == published["tasks.nightly"]
    assert client.zscore("redbeat::schedule", "redbeat:nightly") == score  # untouched
    assert client.hget("redbeat:nightly", "meta") == meta
    assert entry.name == "nightly"
    published.clear()
    one_tick(app)  # done: not again
    assert published == {}
    assert client.zscore("redbeat::schedule", "redbeat::run_now:nightly") is None
    assert not client.exists("redbeat::run_now")


def test_run_now_beside_a_regular_run_publishes_both(
    make_app: Callable[..., Celery], client: Any
) -> None:
    app = make_app()
    due_entries(app, "job")
    Schedule(app).run_now("job")
    sent: list[str] = []

    def record(headers: Any = None, **_: Any) -> None:
        sent.append(headers["task"])

    before_task_publish.connect(record, weak=False)
    try:
        one_tick(app)
    finally:
        before_task_publish.disconnect(record)
    assert sent == ["tasks.job", "tasks.job"]
    assert sorted(r.manual for r in Schedule(app).history("job")) == [False, True]
    assert json.loads(client.hget("redbeat:job", "meta"))["total_run_count"] == 1


@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once"])
def test_run_now_of_a_failing_task(make_app: Callable[..., Celery], delivery: str) -> None:
    """At-least-once keeps the request for the next tick after a failed publish; at-most-once
    marked it done before the publish, as it does any run. Either way the failure is in the
    history, and the entry's schedule is not moved to a retry."""
    app = make_app(redbeat_delivery=delivery)
    app.task(name="tasks.down", base=Refusing, shared=False)(job)
    RedBeatSchedulerEntry("down", "tasks.down", schedule(3600), app=app).save()
    Schedule(app).run_now("down")
    one_tick(app)
    one_tick(app)
    failures = [r for r in Schedule(app).history("down") if r.outcome == "failed"]
    assert len(failures) == (2 if delivery == "at-least-once" else 1)
    assert all(r.manual for r in failures)
    assert Schedule(app).get("down").next_run is not None
    nxt = Schedule(app).get("down").next_run
    assert nxt is not None
    assert nxt > datetime.now(UTC) + timedelta(minutes=30)


def test_run_now_of_an_entry_deleted_meanwhile_is_recorded_unsent(
    make_app: Callable[..., Celery], client: Any, published: dict[str, str]
) -> None:
    app = make_app()
    RedBeatSchedulerEntry("gone", "tasks.gone", schedule(3600), app=app).save()
    Schedule(app).run_now("gone", by="ops")
    client.delete("redbeat:gone")
    one_tick(app)
    assert published == {}
    (record,) = Schedule(app).history()
    assert (record.outcome, record.manual) == ("unsent", True)
    assert record.reason == "run now, asked by ops: the entry was deleted before it could run"
    assert client.zscore("redbeat::schedule", "redbeat::run_now:gone") is None  # done


def test_run_now_of_an_unknown_entry_is_an_error(make_app: Callable[..., Celery]) -> None:
    with pytest.raises(KeyError, match="nope"):
        Schedule(make_app()).run_now("nope")
