"""The audit log on a real server: each path that changes the schedule records itself once,
with who, what and when; it is bounded, and it never fails a change."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, schedule

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_core.audit import AuditRecord, audit_action, operator


def actions(app: Celery) -> list[tuple[str, tuple[str, ...], str | None]]:
    """(action, names, detail) of each change, oldest first."""
    return [(r.action, r.names, r.detail) for r in reversed(Schedule(app).audit(100))]


def test_each_schedule_api_change_is_recorded_as_the_operator_acted(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    api = Schedule(app)
    api.add("report", "tasks.report", crontab(minute="0", hour="3"))
    api.update("report", args=[7])
    api.disable("report")
    api.enable("report")
    api.pause("report", "frozen for the migration", by="ops@bastion")
    api.resume("report")
    api.run_now("report", by="ops@bastion")
    api.delete("report")
    assert actions(app) == [
        ("add", ("report",), None),
        ("update", ("report",), "args"),
        ("disable", ("report",), None),
        ("enable", ("report",), None),
        ("pause", ("report",), "frozen for the migration"),
        ("resume", ("report",), None),
        ("run now", ("report",), None),
        ("delete", ("report",), None),
    ]
    records = api.audit(100)
    assert records[1].by == "ops@bastion"  # who asked for the run
    assert records[0].by.startswith(f"{operator()} (pid ")
    assert all(a.at >= b.at for a, b in itertools.pairwise(records))


def test_celery_redbeat_api_saves_and_deletes_are_recorded(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    entry = RedBeatSchedulerEntry("job", "tasks.job", schedule(60), app=app).save()
    entry.delete()
    assert actions(app) == [("save", ("job",), None), ("delete", ("job",), None)]


def test_nested_actions_read_outer_first(make_app: Callable[..., Celery]) -> None:
    """As ``redbeat apply`` records its writes."""
    app = make_app()
    Schedule(app).add("job", "tasks.job", 60)
    with audit_action("apply", "from schedule.toml"):
        Schedule(app).update("job", args=[1])
    assert actions(app)[-1] == ("apply: update", ("job",), "from schedule.toml; args")


def test_an_import_is_one_record_naming_its_entries(make_app: Callable[..., Celery]) -> None:
    app = make_app()
    api = Schedule(app)
    for i in range(25):
        api.add(f"e{i:02}", "tasks.e", 60)
    exported = api.export()
    before = len(api.audit(100))
    assert api.import_(exported) == 25
    (record,) = api.audit(100)[: len(api.audit(100)) - before]
    assert (record.action, record.count, len(record.names)) == ("import", 25, 20)


def test_the_beat_start_up_sync_is_recorded_only_when_it_changes_something(
    make_app: Callable[..., Celery],
) -> None:
    beat_schedule = {"static": {"task": "tasks.static", "schedule": 60.0}}
    app = make_app(beat_schedule=beat_schedule)
    for _ in range(2):  # the second start-up finds everything as configured
        RedBeatScheduler(app=app).close()
    syncs = [r for r in Schedule(app).audit(100) if r.action == "sync beat_schedule"]
    assert len(syncs) == 1
    assert "static" in syncs[0].names
    assert syncs[0].by.startswith("beat ")
    assert syncs[0].detail is not None
    assert syncs[0].detail.endswith("saved, 0 removed")


def test_the_log_is_bounded(make_app: Callable[..., Celery], client: Any) -> None:
    app = make_app(redbeat_audit_limit=3)
    for i in range(5):
        Schedule(app).add(f"e{i}", "tasks.e", 60)
    assert [r.names for r in Schedule(app).audit(10)] == [("e4",), ("e3",), ("e2",)]
    assert client.llen("redbeat::audit") == 3


def test_off_records_nothing(make_app: Callable[..., Celery], client: Any) -> None:
    app = make_app(redbeat_audit_limit=0)
    Schedule(app).add("e", "tasks.e", 60)
    assert Schedule(app).audit() == []
    assert not client.exists("redbeat::audit")


def test_a_broken_log_never_fails_the_change(
    make_app: Callable[..., Celery], client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    client.set("redbeat::audit", "another program's string")
    with caplog.at_level(logging.WARNING):
        Schedule(app).add("e", "tasks.e", 60)
    assert Schedule(app).get("e").task == "tasks.e"
    assert "the change (add of e) is done, but the audit log was not written" in caplog.text


def test_records_another_program_wrote_are_skipped(
    make_app: Callable[..., Celery], client: Any
) -> None:
    app = make_app()
    Schedule(app).add("e", "tasks.e", 60)
    client.lpush("redbeat::audit", "not json", '{"at": "soon"}')
    assert [r.action for r in Schedule(app).audit()] == ["add"]


def test_the_record_round_trips() -> None:
    record = AuditRecord(at=5.0, by="me@host", action="pause", names=("a",), count=1, detail="x")
    assert AuditRecord.from_json(record.to_json()) == record
    assert AuditRecord.from_json('{"at": 1, "by": "b", "action": "a", "names": "x"}') is None
