"""Bad entries are refused where they enter and quarantined where they are found (issue #16,
items 2 and 10), on a real server with the real scheduler.

On main before this change: ``save()`` stored an interval of 0 and an entry named "" (whose key
is just the prefix); a stored zero interval was published at every tick, in a loop; a
``beat_schedule`` entry with a zero interval was synced like any other; ``update_from_dict``
failed with ``AttributeError`` for a schedule given as a string.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import ago, recording_publishes

from redbeat import InvalidEntryError, RedBeatScheduler, RedBeatSchedulerEntry

SCHEDULE_KEY = "redbeat::schedule"
QUARANTINE_KEY = "redbeat::quarantine"
STATICS_KEY = "redbeat::statics"


def store_raw(client: Any, name: str, every: float, *, static: bool = False) -> None:
    """What a celery-redbeat beat or a script could have stored: an interval written as JSON,
    due a second ago, never asked for its next run."""
    definition = {
        "name": name,
        "task": f"tasks.{name}",
        "args": [],
        "kwargs": {},
        "options": {},
        "schedule": {"__type__": "interval", "every": every, "relative": False},
        "enabled": True,
    }
    client.hset(f"redbeat:{name}", mapping={"definition": json.dumps(definition)})
    client.zadd(SCHEDULE_KEY, {f"redbeat:{name}": time.time() - 1})
    if static:
        client.sadd(STATICS_KEY, name)


def healthy(app: Celery, name: str = "healthy") -> RedBeatSchedulerEntry:
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(30), app=app)
    entry.last_run_at = ago(60)
    return entry.save()


def test_the_error_is_exported_from_the_drop_in_package_too() -> None:
    """celery-redbeat users import errors from ``redbeat``; it is the core's class."""
    import redbeat_core

    assert InvalidEntryError is redbeat_core.InvalidEntryError


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"name": ""}, id="empty-name-whose-key-is-the-prefix"),
        pytest.param({"schedule": 0}, id="zero-interval"),
        pytest.param({"schedule": timedelta(seconds=-1)}, id="negative-interval"),
        pytest.param({"args": {"a": 1}}, id="args-dict"),
        pytest.param({"kwargs": {"when": object()}}, id="unencodable-kwarg"),
    ],
)
def test_an_invalid_entry_is_refused_before_anything_is_written(
    app: Celery, client: Any, fields: dict[str, Any]
) -> None:
    values: dict[str, Any] = {"name": "bad", "task": "tasks.bad", "schedule": 30, **fields}
    with pytest.raises(InvalidEntryError):
        RedBeatSchedulerEntry(app=app, **values).save()
    assert client.keys("*") == []


def test_a_stored_zero_interval_is_quarantined_instead_of_published_in_a_loop(
    app: Celery, client: Any
) -> None:
    """Twenty ticks: main published the zero interval at each one (about 300 a second when
    the beat ran freely); now it is quarantined at the first and never published."""
    store_raw(client, "loop", 0)
    healthy(app)
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            for _ in range(20):
                scheduler.tick()
        assert published.tasks == ["tasks.healthy"]
        reason = client.hget(QUARANTINE_KEY, "redbeat:loop")
        assert reason.startswith("invalid schedule every 0 s: an interval must be at least 0.1 s")
        assert client.zscore(SCHEDULE_KEY, "redbeat:loop") is None
        assert client.exists("redbeat:loop")  # kept for inspection
    finally:
        scheduler.close()


def test_a_refused_stored_entry_can_be_loaded_fixed_and_saved_again(
    app: Celery, client: Any
) -> None:
    store_raw(client, "fixme", -5)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert client.hexists(QUARANTINE_KEY, "redbeat:fixme")
        entry = RedBeatSchedulerEntry.from_key("redbeat:fixme", app=app)
        entry.schedule = schedule(10)
        entry.save()
        assert not client.hexists(QUARANTINE_KEY, "redbeat:fixme")
        assert client.zscore(SCHEDULE_KEY, "redbeat:fixme") is not None
    finally:
        scheduler.close()


def test_a_static_with_a_bad_interval_is_refused_by_name_and_the_others_are_synced(
    make_app: Callable[..., Celery], client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        beat_schedule={
            "fine": {"task": "tasks.fine", "schedule": 60.0},
            "zero": {"task": "tasks.zero", "schedule": 0},
            "negative": {"task": "tasks.negative", "schedule": timedelta(seconds=-1)},
            "tiny": {"task": "tasks.tiny", "schedule": 1e-9},
            "listed-kwargs": {"task": "tasks.k", "schedule": 60.0, "kwargs": [1]},
        }
    )
    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        RedBeatScheduler(app=app).close()
    assert client.exists("redbeat:fine")
    for name in ("zero", "negative", "tiny", "listed-kwargs"):
        assert not client.exists(f"redbeat:{name}")
    errors = {
        name: message
        for message in (r.getMessage() for r in caplog.records)
        for name in ("zero", "negative", "tiny", "listed-kwargs")
        if f"cannot add static entry {name!r}" in message
    }
    assert errors.keys() == {"zero", "negative", "tiny", "listed-kwargs"}
    assert "invalid schedule every 0 s" in errors["zero"]
    assert "redbeat_min_interval" in errors["negative"]
    assert "invalid kwargs [1]" in errors["listed-kwargs"]


def test_a_bad_static_stored_unchanged_by_an_earlier_beat_is_refused_and_paused(
    make_app: Callable[..., Celery], client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored exactly as configured, it would have been left alone as "unchanged" and gone on
    running; refused, its stored entry is paused with the reason instead."""
    store_raw(client, "zero", 0, static=True)
    app = make_app(beat_schedule={"zero": {"task": "tasks.zero", "schedule": 0}})
    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        scheduler = RedBeatScheduler(app=app)
    try:
        assert any(
            "static entry 'zero'" in r.getMessage()
            and "Its stored definition is paused until then" in r.getMessage()
            for r in caplog.records
        )
        with recording_publishes() as published:
            scheduler.tick()
        assert published.tasks == []
        assert client.zscore("redbeat::schedule", "redbeat:zero") is None
        policy = json.loads(client.hget("redbeat:zero", "policy"))
        assert policy["paused_reason"].startswith(
            "its new definition in beat_schedule was refused: invalid schedule every 0 s"
        )
    finally:
        scheduler.close()


def test_update_from_dict_refuses_an_invalid_entry_and_writes_none(
    app: Celery, client: Any
) -> None:
    scheduler = RedBeatScheduler(app=app)
    try:
        before = set(client.keys("*"))
        with pytest.raises(InvalidEntryError) as caught:
            scheduler.update_from_dict(
                {
                    "fine": {"task": "tasks.fine", "schedule": 60.0},
                    "stringly": {"task": "tasks.s", "schedule": "5"},
                }
            )
        assert (caught.value.name, caught.value.field) == ("stringly", "schedule")
        with pytest.raises(InvalidEntryError, match="redbeat_min_interval"):
            scheduler.update_from_dict({"zero": {"task": "tasks.z", "schedule": 0}})
        assert set(client.keys("*")) == before
        scheduler.update_from_dict({"fast": {"task": "tasks.f", "schedule": 0.5}})
        assert client.zscore(SCHEDULE_KEY, "redbeat:fast") is not None
    finally:
        scheduler.close()
