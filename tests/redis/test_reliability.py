"""No entry stops scheduling for everyone (issue #16), on a real server with the real scheduler.

Each test puts one hostile entry next to healthy ones and checks that the healthy ones keep
their timing, the hostile one ends quarantined with its reason, and the beat keeps its lease.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import ago, recording_publishes

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.runtime import get_runtime
from redbeat_core.schedules import rrule

SCHEDULE_KEY = "redbeat::schedule"
QUARANTINE_KEY = "redbeat::quarantine"


@pytest.fixture
def client(redbeat_url: str) -> Iterator[Any]:
    conn = redis.Redis.from_url(redbeat_url, decode_responses=True)
    try:
        yield conn
    finally:
        conn.close()


def due_entry(app: Celery, name: str, every: float = 30) -> RedBeatSchedulerEntry:
    item = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(every), app=app)
    item.last_run_at = ago(every * 2)
    return item.save()


def store_raw(client: Any, app: Celery, name: str, sched: Any) -> None:
    """Store an entry the way another process could have, without asking its schedule for
    its next run (which is the point of the test): definition, no meta, due now."""
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", sched, app=app)
    definition = get_runtime(app).codec.encode_definition(entry.to_definition())
    client.hset(f"redbeat:{name}", mapping={"definition": definition})
    client.zadd(SCHEDULE_KEY, {f"redbeat:{name}": time.time() - 1})


def test_a_schedule_that_needs_endless_work_is_quarantined_and_the_beat_keeps_ticking(
    make_app: Callable[..., Celery], client: Any
) -> None:
    """February 30th, every second: dateutil steps through seconds until the year 9999. The
    leader used to stall on it until its lease lapsed; the standby then stalled too."""
    app = make_app(redbeat_entry_time_budget=0.3, redbeat_lock_timeout=3)
    start = datetime.now(UTC) - timedelta(days=1)
    store_raw(client, app, "never", rrule("SECONDLY", dtstart=start, bymonth=2, bymonthday=30))
    due_entry(app, "healthy")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            started = time.monotonic()
            scheduler.tick()
            took = time.monotonic() - started
        assert took < 2.0
        assert published.tasks == ["tasks.healthy"]
        reason = client.hget(QUARANTINE_KEY, "redbeat:never")
        assert "took more than 0.3s (redbeat_entry_time_budget)" in reason
        assert client.zscore(SCHEDULE_KEY, "redbeat:never") is None
        assert scheduler.lock is not None
        assert scheduler.lock.held
        assert client.pttl("redbeat::lock") > 2000  # renewed by the commit after planning
    finally:
        scheduler.close()


def test_a_plausible_rule_from_long_ago_runs_on_time(
    make_app: Callable[..., Celery], client: Any
) -> None:
    """Every minute since 2020: 3.6 million steps for dateutil from its start (7.5 s a call).
    It is computed from near now, so it simply runs."""
    app = make_app()
    minutely = rrule("MINUTELY", dtstart=datetime(2020, 1, 1, tzinfo=UTC))
    entry = RedBeatSchedulerEntry("minutely", "tasks.minutely", minutely, app=app)
    entry.last_run_at = ago(61)
    started = time.monotonic()
    entry.save()
    assert time.monotonic() - started < 1.0
    client.zadd(SCHEDULE_KEY, {"redbeat:minutely": time.time() - 1})
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            started = time.monotonic()
            scheduler.tick()
            assert time.monotonic() - started < 1.0
        assert published.tasks == ["tasks.minutely"]
        next_due = client.zscore(SCHEDULE_KEY, "redbeat:minutely")
        assert 0 < next_due - time.time() <= 60
        assert next_due % 60 == pytest.approx(0, abs=0.002)
        assert json.loads(client.hget("redbeat:minutely", "meta"))["total_run_count"] == 1
    finally:
        scheduler.close()
