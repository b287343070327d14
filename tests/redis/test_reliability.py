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
from celery import Celery, Task
from celery.schedules import schedule
from redbeat_test_support import ago, recording_publishes, wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core import BrokenStoreError, hookimpl
from redbeat_core.runtime import get_runtime
from redbeat_core.schedules import rrule

SCHEDULE_KEY = "redbeat::schedule"
LOCK_KEY = "redbeat::lock"
QUARANTINE_KEY = "redbeat::quarantine"


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


# ----------------------------------------------------------------------------- publishing


class Refusing(Task):  # type: ignore[misc]
    """A task whose publish fails while ``down`` is set, as with a broker that is down."""

    down = True

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        if Refusing.down:
            raise ConnectionError("broker down")
        return super().apply_async(*args, **kwargs)


def refusing_app(make_app: Callable[..., Celery], delivery: str) -> Celery:
    app = make_app(redbeat_delivery=delivery)

    def job() -> None: ...

    for name in ("a", "b", "c", "d", "e"):
        app.task(name=f"tasks.{name}", base=Refusing, shared=False)(job)
    return app


def meta(client: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(client.hget(f"redbeat:{name}", "meta"))
    return found


@pytest.fixture
def broker_down() -> Iterator[None]:
    Refusing.down = True
    try:
        yield
    finally:
        Refusing.down = False


@pytest.mark.usefixtures("broker_down")
def test_at_least_once_leaves_a_run_due_when_its_publish_fails(
    make_app: Callable[..., Celery], client: Any
) -> None:
    """Found on main: a publish that raised was still committed as run under at-least-once,
    so a broker outage lost every run it covered. Now it stays due, with backoff, and runs
    once the broker is back."""
    app = refusing_app(make_app, "at-least-once")
    due_entry(app, "a")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            scheduler.tick()
            assert published.tasks == []
            assert meta(client, "a")["total_run_count"] == 0  # not counted as run
            retry_at = client.zscore(SCHEDULE_KEY, "redbeat:a")
            assert time.time() < retry_at <= time.time() + 1.1  # tried again in a second
            client.zadd(SCHEDULE_KEY, {"redbeat:a": time.time() - 1})  # skip the wait
            scheduler.tick()  # still down: the backoff doubles
            assert client.zscore(SCHEDULE_KEY, "redbeat:a") > time.time() + 1.5
            Refusing.down = False
            client.zadd(SCHEDULE_KEY, {"redbeat:a": time.time() - 1})
            scheduler.tick()
        assert published.tasks == ["tasks.a"]
        assert meta(client, "a")["total_run_count"] == 1
    finally:
        scheduler.close()


@pytest.mark.usefixtures("broker_down")
def test_at_most_once_loses_a_failed_publish_and_says_so(
    make_app: Callable[..., Celery], client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = refusing_app(make_app, "at-most-once")
    due_entry(app, "a")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            scheduler.tick()
        assert published.tasks == []
        assert meta(client, "a")["total_run_count"] == 1  # stored as run before the publish
        assert "its run is lost (at-most-once" in caplog.text
    finally:
        scheduler.close()


@pytest.mark.usefixtures("broker_down")
def test_a_broker_that_keeps_failing_is_not_tried_for_every_run(
    make_app: Callable[..., Celery], client: Any
) -> None:
    """Each failed publish waits for Celery's own retries; a tick of many runs against a dead
    broker would outlive the lease. After three failures in a row the rest stay due."""
    app = refusing_app(make_app, "at-least-once")
    for name in ("a", "b", "c", "d", "e"):
        due_entry(app, name)
    tried: list[str] = []
    original = Refusing.apply_async

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(self.name)
        return original(self, *args, **kwargs)

    scheduler = RedBeatScheduler(app=app)
    try:
        Refusing.apply_async = counting  # type: ignore[method-assign]
        scheduler.tick()
    finally:
        Refusing.apply_async = original  # type: ignore[method-assign]
        scheduler.close()
    assert len(tried) == 3
    for name in ("a", "b", "c", "d", "e"):
        assert meta(client, name)["total_run_count"] == 0
        assert client.zscore(SCHEDULE_KEY, f"redbeat:{name}") > time.time()


# ----------------------------------------------------------------------------- a stale leader


class Pause:
    """Pauses the beat between its commit and its publishes until its lease has lapsed and
    another beat holds the lock: a GC pause, SIGSTOP or a stalled VM, made observable."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @hookimpl
    def redbeat_before_dispatch(self) -> None:
        wait_for(lambda: not self.client.exists(LOCK_KEY), timeout=10, what="the lease lapses")
        self.client.set(LOCK_KEY, "another-beat", px=60_000)


@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once"])
def test_a_leader_whose_lease_lapsed_while_paused_does_not_publish(
    make_app: Callable[..., Celery], client: Any, caplog: pytest.LogCaptureFixture, delivery: str
) -> None:
    """Found on main: a leader paused after its commit published ~15 s late, after another
    beat had taken over. It checks its lease by its own clock before publishing now."""
    app = make_app(redbeat_lock_timeout=1, redbeat_delivery=delivery)
    get_runtime(app).plugins.register(Pause(client), name="pause")
    due_entry(app, "a")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            scheduler.tick()
        assert published.tasks == []
        assert "the lease may have lapsed" in caplog.text
        if delivery == "at-least-once":
            # Not counted as run: the next leader runs it (its commit failed anyway).
            assert meta(client, "a")["total_run_count"] == 0
            assert client.zscore(SCHEDULE_KEY, "redbeat:a") <= time.time()
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- broken keys


BROKEN_SHARED_KEYS = [
    ("redbeat::schedule", lambda c, k: c.set(k, "not a sorted set"), "string"),
    ("redbeat::lock", lambda c, k: c.hset(k, "a", "b"), "hash"),
    ("redbeat::lock:epoch", lambda c, k: c.set(k, "seven"), "'seven'"),
    ("redbeat::lock:epoch", lambda c, k: c.sadd(k, "7"), "set"),
]


@pytest.mark.parametrize(("key", "break_it", "found"), BROKEN_SHARED_KEYS)
def test_a_broken_shared_key_is_reported_once_and_the_beat_waits_as_a_standby(
    make_app: Callable[..., Celery],
    client: Any,
    caplog: pytest.LogCaptureFixture,
    key: str,
    break_it: Any,
    found: str,
) -> None:
    """Found on main: a key of the wrong type raised ResponseError out of tick(); the beat
    exited, the standby took the lock and died the same way. Now it is reported once, with the
    key, what it holds and the fix, and the beat keeps ticking; it recovers once mended."""
    app = make_app(redbeat_lock_timeout=3)
    due_entry(app, "a")
    beats = [RedBeatScheduler(app=app), RedBeatScheduler(app=make_app(redbeat_lock_timeout=3))]
    break_it(client, key)  # while both run (a beat starting now is refused, with the key)
    try:
        with recording_publishes() as published:
            for _ in range(3):
                for beat in beats:
                    assert beat.tick() >= 0  # no exception out of the beat loop
            assert published.tasks == []
            refusals = [r for r in caplog.records if "refuses the tick" in r.getMessage()]
            # Once per beat that met it (the standby only tries the lock), not once per tick.
            assert 1 <= len(refusals) <= len(beats)
            message = refusals[0].getMessage()
            assert key in message
            assert found in message
            assert f"DEL {key}" in message
            client.delete(key)
            due_entry(app, "a")  # (a replaced schedule lost its members: save it again)
            wait_for(
                lambda: any(beat.tick() is not None for beat in beats) and bool(published.tasks),
                timeout=10,
                what="the beat dispatches once the key is mended",
            )
        assert published.tasks == ["tasks.a"]
    finally:
        for beat in beats:
            beat.close()


def test_a_broken_quarantine_key_stops_nothing_until_something_must_be_quarantined(
    make_app: Callable[..., Celery], client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    due_entry(app, "a")
    client.rpush(QUARANTINE_KEY, "another program's list")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            scheduler.tick()
            assert published.tasks == ["tasks.a"]
            client.hset("redbeat:broken", mapping={"definition": "{not json"})
            client.zadd(SCHEDULE_KEY, {"redbeat:broken": time.time() - 1})
            due_entry(app, "b")
            scheduler.tick()  # must quarantine: refused whole, the key named
        assert published.tasks == ["tasks.a"]
        assert f"{QUARANTINE_KEY} holds a list, not a hash" in caplog.text
        assert json.loads(client.hget("redbeat:b", "meta"))["total_run_count"] == 0
    finally:
        scheduler.close()


def test_a_broken_entry_key_and_a_member_without_the_prefix_are_quarantined(
    make_app: Callable[..., Celery], client: Any
) -> None:
    """Found on main: a member without the key prefix was re-published on every tick and never
    advanced (its updates addressed another key); a member whose key is not a hash stopped the
    whole claim. Both are moved aside with the reason, and the others run."""
    app = make_app()
    due_entry(app, "healthy")
    client.zadd(SCHEDULE_KEY, {"stray": time.time() - 5, "redbeat:string": time.time() - 5})
    client.set("redbeat:string", "not a hash")
    client.hset("stray", mapping={"definition": '{"name": "stray", "task": "tasks.stray"}'})
    quarantined: list[str] = []

    class Watch:
        @hookimpl
        def redbeat_entry_quarantined(self, name: str) -> None:
            quarantined.append(name)

    get_runtime(app).plugins.register(Watch(), name="watch")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            scheduler.tick()
            scheduler.tick()
        assert published.tasks == ["tasks.healthy"]
        reasons = client.hgetall(QUARANTINE_KEY)
        assert "does not start with the key prefix redbeat:" in reasons["stray"]
        assert "holds a string, not an entry hash" in reasons["redbeat:string"]
        assert client.zscore(SCHEDULE_KEY, "stray") is None
        assert client.zscore(SCHEDULE_KEY, "redbeat:string") is None
        assert client.get("redbeat:string") == "not a hash"  # another program's data: kept
        assert sorted(quarantined) == ["stray", "string"]
    finally:
        scheduler.close()


def test_a_commit_is_all_or_nothing(make_app: Callable[..., Celery], client: Any) -> None:
    """Found on main: a quarantine write that failed mid-commit left the entries updated before
    it applied, so their runs were stored as run but never published. The commit now checks
    every key first: all of it is applied, or none."""
    app = make_app()
    due_entry(app, "a")
    client.hset("redbeat:broken", mapping={"definition": "{not json"})
    client.zadd(SCHEDULE_KEY, {"redbeat:broken": time.time() - 100})
    before = client.hget("redbeat:a", "meta")

    class BreakTheQuarantine:
        @hookimpl
        def redbeat_decide_runs(self) -> None:  # between the claim and the commit
            client.set(QUARANTINE_KEY, "another program's string")

    get_runtime(app).plugins.register(BreakTheQuarantine(), name="breaker")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published:
            scheduler.tick()
        assert published.tasks == []
        assert client.hget("redbeat:a", "meta") == before  # not stored as run
        assert client.zscore(SCHEDULE_KEY, "redbeat:a") <= time.time()  # still due
        assert client.zscore(SCHEDULE_KEY, "redbeat:broken") is not None
    finally:
        scheduler.close()


def test_a_save_over_another_programs_key_is_refused_whole(
    make_app: Callable[..., Celery], client: Any
) -> None:
    app = make_app()
    client.set("redbeat:taken", "another program's value")
    store = get_runtime(app).store
    good = RedBeatSchedulerEntry("good", "tasks.good", schedule(30), app=app).to_stored()
    taken = RedBeatSchedulerEntry("taken", "tasks.taken", schedule(30), app=app).to_stored()
    with pytest.raises(BrokenStoreError, match="redbeat:taken holds a string"):
        store.save_many([good, taken])
    assert client.exists("redbeat:good") == 0  # nothing of the batch was written
    assert client.get("redbeat:taken") == "another program's value"


def test_a_beat_starting_on_a_broken_schedule_says_which_key(
    make_app: Callable[..., Celery], client: Any
) -> None:
    client.set(SCHEDULE_KEY, "not a sorted set")
    app = make_app(beat_schedule={"static": {"task": "tasks.static", "schedule": 60.0}})
    with pytest.raises(BrokenStoreError) as info:
        RedBeatScheduler(app=app)
    message = str(info.value)
    assert "refuses to sync beat_schedule" in message
    assert f"{SCHEDULE_KEY} holds a string, not a sorted set" in message
    assert f"DEL {SCHEDULE_KEY}" in message


def test_a_beat_starting_on_a_broken_statics_set_says_which_key(
    make_app: Callable[..., Celery], client: Any
) -> None:
    client.set("redbeat::statics", "not a set")
    with pytest.raises(BrokenStoreError) as info:
        RedBeatScheduler(app=make_app())
    assert "redbeat::statics holds a string, not a set" in str(info.value)
