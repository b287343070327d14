"""The scheduler's tick against a real server: dispatch, runtime changes, locking, bad input.

Ticks are driven by calling ``scheduler.tick()`` directly, so nothing waits on wall-clock
sleeps; publishes go through Celery's real ``apply_async`` on a ``memory://`` broker and are
counted with the ``before_task_publish`` signal.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery.schedules import crontab, schedule
from celery.signals import before_task_publish
from redbeat_test_support import ago

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import ConfigurationError, UnknownBackendError
from redbeat_core.schedules import clocked


@pytest.fixture
def published() -> Iterator[list[str]]:
    """Task names in the order they were published (by any scheduler in the test)."""
    names: list[str] = []

    def record(sender: Any = None, headers: Any = None, **_: Any) -> None:
        names.append(headers["task"] if headers else sender)

    before_task_publish.connect(record, weak=False)
    yield names
    before_task_publish.disconnect(record)


def due_entry(app: Any, name: str, task: str = "tasks.add", every: float = 30) -> Any:
    """An interval entry that last ran long enough ago to be due now."""
    entry = RedBeatSchedulerEntry(name, task, schedule(every), args=[1, 2], app=app)
    entry.last_run_at = ago(every * 2)
    return entry.save()


def make_scheduler(app: Any, **kwargs: Any) -> RedBeatScheduler:
    return RedBeatScheduler(app=app, **kwargs)


# ----------------------------------------------------------------------------- dispatch


def test_due_entries_are_published_once_and_rescheduled(
    app: Any, published: list[str], client: Any
) -> None:
    for i in range(3):
        due_entry(app, f"e{i}", task=f"tasks.t{i}")
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        assert sorted(published) == ["tasks.t0", "tasks.t1", "tasks.t2"]
        scheduler.tick()
        assert len(published) == 3  # nothing is due any more
        meta = json.loads(client.hget("redbeat:e0", "meta"))
        assert meta["total_run_count"] == 1
        score = client.zscore("redbeat::schedule", "redbeat:e0")
        assert 25 < score - datetime.now(UTC).timestamp() <= 30
    finally:
        scheduler.close()


def test_idle_tick_sleeps_until_the_next_due_time(app: Any, published: list[str]) -> None:
    entry = RedBeatSchedulerEntry("soon", "tasks.add", schedule(2), app=app).save()
    assert entry.last_run_at is not None
    scheduler = make_scheduler(app)
    try:
        interval = scheduler.tick()
        assert published == []
        assert 1.0 < interval <= 2.0
    finally:
        scheduler.close()


def test_tick_never_sleeps_past_the_lock_renewal(app: Any) -> None:
    RedBeatSchedulerEntry("far", "tasks.add", schedule(3600), app=app).save()
    scheduler = make_scheduler(app)
    try:
        assert scheduler.tick() == pytest.approx(scheduler.config.lock_renew_interval, abs=0.01)
    finally:
        scheduler.close()


def test_changes_from_another_process_apply_at_the_next_tick(
    make_app: Any, published: list[str]
) -> None:
    beat_app, other_app = make_app(), make_app()  # two apps: as if two processes
    scheduler = make_scheduler(beat_app)
    try:
        scheduler.tick()
        due_entry(other_app, "added", task="tasks.added")
        scheduler.tick()
        assert published == ["tasks.added"]

        # disable: not published, and out of the schedule even when made due
        entry = RedBeatSchedulerEntry.from_key("redbeat:added", app=other_app)
        entry.enabled = False
        entry.save()
        entry.reschedule(ago(100))
        assert entry.rank is None
        scheduler.tick()
        assert published == ["tasks.added"]

        # re-enable: back in the schedule, due at once (it last ran long ago)
        entry.enabled = True
        entry.save()
        entry.reschedule(ago(100))
        scheduler.tick()
        assert published == ["tasks.added", "tasks.added"]

        # change the task: the next run uses the new definition
        entry.task = "tasks.changed"
        entry.save()
        entry.reschedule(ago(100))
        scheduler.tick()
        assert published[-1] == "tasks.changed"

        # delete a due entry before the tick: never published again
        entry.reschedule(ago(100))
        entry.delete()
        scheduler.tick()
        assert published.count("tasks.changed") == 1
    finally:
        scheduler.close()


def test_batches_are_capped_and_the_rest_follow_at_once(
    make_app: Any, published: list[str]
) -> None:
    app = make_app(redbeat_batch_size=10)
    for i in range(25):
        due_entry(app, f"e{i:02}")
    scheduler = make_scheduler(app)
    try:
        assert scheduler.tick() == 0.0
        assert len(published) == 10
        assert scheduler.tick() == 0.0
        assert scheduler.tick() > 0.0
        assert len(published) == 25
    finally:
        scheduler.close()


def test_one_off_runs_once_then_leaves_the_schedule(app: Any, published: list[str]) -> None:
    entry = RedBeatSchedulerEntry("once", "tasks.once", clocked(ago(1)), app=app).save()
    assert entry.rank == 0
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        scheduler.tick()
        assert published == ["tasks.once"]
        assert entry.rank is None
        assert RedBeatSchedulerEntry.from_key(entry.key, app=app).total_run_count == 1
    finally:
        scheduler.close()


def test_crontab_entry_is_scheduled_for_its_next_minute(app: Any) -> None:
    entry = RedBeatSchedulerEntry("cron", "tasks.cron", crontab(), app=app).save()
    due = entry.due_at
    assert due is not None
    assert due.second == 0
    assert 0 < (due - datetime.now(UTC)).total_seconds() <= 60


def test_at_least_once_publishes_before_it_commits(
    make_app: Any, published: list[str], client: Any
) -> None:
    app = make_app(redbeat_delivery="at-least-once")
    due_entry(app, "a", task="tasks.a")
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        assert published == ["tasks.a"]
        assert json.loads(client.hget("redbeat:a", "meta"))["total_run_count"] == 1
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- statics


def test_static_entries_sync_keep_last_run_and_removed_ones_go(make_app: Any, client: Any) -> None:
    statics = {
        "every-minute": {"task": "tasks.a", "schedule": 60.0},
        "nightly": {"task": "tasks.b", "schedule": crontab(minute=0, hour=3)},
    }
    app = make_app(beat_schedule=statics)
    make_scheduler(app).close()
    assert client.smembers("redbeat::statics") == {"every-minute", "nightly"}
    last_run = ago(10)
    RedBeatSchedulerEntry.from_key("redbeat:every-minute", app=app).reschedule(last_run)

    app2 = make_app(beat_schedule={"every-minute": {"task": "tasks.a2", "schedule": 60.0}})
    make_scheduler(app2).close()
    assert client.smembers("redbeat::statics") == {"every-minute"}
    assert not client.exists("redbeat:nightly")
    entry = RedBeatSchedulerEntry.from_key("redbeat:every-minute", app=app2)
    assert entry.task == "tasks.a2"
    assert entry.last_run_at == last_run


def test_a_restart_with_unchanged_statics_writes_nothing(make_app: Any, client: Any) -> None:
    statics = {f"s{i}": {"task": "tasks.a", "schedule": 60.0 + i} for i in range(20)}
    make_scheduler(make_app(beat_schedule=statics)).close()
    client.execute_command("CONFIG", "RESETSTAT")
    changed = dict(statics, s3={"task": "tasks.changed", "schedule": 60.0})
    make_scheduler(make_app(beat_schedule=changed)).close()
    stats = client.info("commandstats")
    assert stats["cmdstat_hset"]["calls"] == 1  # the changed one; scripts' commands count too
    assert stats["cmdstat_zadd"]["calls"] == 1
    assert RedBeatSchedulerEntry.from_key("redbeat:s3", app=make_app()).task == "tasks.changed"


def test_a_changed_static_with_unreadable_meta_starts_afresh(make_app: Any, client: Any) -> None:
    make_scheduler(make_app(beat_schedule={"s": {"task": "tasks.a", "schedule": 60.0}})).close()
    client.hset("redbeat:s", "meta", "{not json")
    app = make_app(beat_schedule={"s": {"task": "tasks.b", "schedule": 60.0}})
    make_scheduler(app).close()
    meta = RedBeatSchedulerEntry.decode_meta(client.hget("redbeat:s", "meta"), app=app)
    assert meta["total_run_count"] == 0
    assert client.zscore("redbeat::schedule", "redbeat:s") is not None


# ----------------------------------------------------------------------------- locking


def test_only_one_of_two_beats_dispatches(make_app: Any, published: list[str]) -> None:
    app_a, app_b = make_app(), make_app()
    for i in range(5):
        due_entry(app_a, f"e{i}")
    first, second = make_scheduler(app_a), make_scheduler(app_b)
    try:
        first.tick()
        standby_wait = second.tick()
        assert len(published) == 5
        assert standby_wait == 0.0  # it waited the poll interval for a release, then tries
        assert first.lock is not None
        assert first.lock.held
        assert second.lock is not None
        assert not second.lock.held

        first.close()  # graceful stop releases the lock: the standby takes over at once
        due_entry(app_b, "after", task="tasks.after")
        second.tick()
        assert second.lock.held
        assert published[-1] == "tasks.after"
    finally:
        second.close()


def test_a_beat_that_lost_its_lock_stops_dispatching(
    app: Any, published: list[str], client: Any
) -> None:
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
        client.set("redbeat::lock", "someone-else")  # e.g. our lease lapsed and another took it
        due_entry(app, "a")
        assert scheduler.tick() == scheduler.config.lock_poll_interval
        assert published == []
        assert not scheduler.lock.held
    finally:
        scheduler.close()
    assert client.get("redbeat::lock") == "someone-else"  # close() never frees another's lock


def test_lock_epoch_grows_with_each_leader(make_app: Any, client: Any) -> None:
    first = make_scheduler(make_app())
    first.tick()
    first.close()
    second = make_scheduler(make_app())
    second.tick()
    try:
        assert second.lock is not None
        assert second.lock.fence is not None
        assert second.lock.fence.epoch == 2 == int(client.get("redbeat::lock:epoch"))
    finally:
        second.close()


def test_without_a_lock_key_no_lock_is_taken(make_app: Any, client: Any) -> None:
    app = make_app(redbeat_lock_key=None)
    due_entry(app, "a")
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        assert not client.exists("redbeat::lock")
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- bad input


def test_bad_entries_are_quarantined_once_and_the_rest_run(
    app: Any, published: list[str], client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    due_entry(app, "good", task="tasks.good")
    client.hset("redbeat:corrupt", mapping={"definition": "{not json"})
    client.zadd("redbeat::schedule", {"redbeat:corrupt": 1})
    odd = {"name": "odd", "task": "t", "schedule": {"__type__": "lunar", "phase": 1}}
    client.hset("redbeat:odd", mapping={"definition": json.dumps(odd)})
    client.zadd("redbeat::schedule", {"redbeat:odd": 2})
    scheduler = make_scheduler(app)
    try:
        with caplog.at_level(logging.ERROR, logger="celery.beat"):
            scheduler.tick()
            scheduler.tick()
        assert published == ["tasks.good"]
        quarantined = client.hgetall("redbeat::quarantine")
        assert set(quarantined) == {"redbeat:corrupt", "redbeat:odd"}
        assert "lunar" in quarantined["redbeat:odd"]
        assert client.zscore("redbeat::schedule", "redbeat:corrupt") is None
        errors = [r.getMessage() for r in caplog.records if "'corrupt'" in r.getMessage()]
        assert len(errors) == 1
    finally:
        scheduler.close()


def test_unknown_task_is_quarantined_when_asked(
    make_app: Any, published: list[str], client: Any
) -> None:
    app = make_app(redbeat_unknown_task="quarantine")

    @app.task(name="tasks.known", shared=False)
    def known(*args: Any) -> None: ...

    due_entry(app, "known", task="tasks.known")
    due_entry(app, "typo", task="tasks.knwon")
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        assert published == ["tasks.known"]
        assert "tasks.knwon" in client.hget("redbeat::quarantine", "redbeat:typo")
    finally:
        scheduler.close()


def test_unknown_task_is_sent_by_name_by_default(app: Any, published: list[str]) -> None:
    due_entry(app, "remote", task="tasks.only_on_workers")
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        assert published == ["tasks.only_on_workers"]
    finally:
        scheduler.close()


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("redbeat_redis_url", "mongodb://x/1", "mongodb://"),
        ("redbeat_redis_url", "redis+nosuch://h:26379/m", "redis+nosuch://"),
        ("redbeat_lock_timeout", -5, "redbeat_lock_timeout"),
        ("redbeat_lock_renew_interval", 60, "renew"),
        ("redbeat_batch_size", 0, "redbeat_batch_size"),
        ("redbeat_delivery", "exactly-once", "at-least-once"),
    ],
)
def test_invalid_settings_fail_at_start_up_naming_the_setting(
    make_app: Any, setting: str, value: Any, words: str
) -> None:
    app = make_app(**{setting: value})
    with pytest.raises(ConfigurationError) as info:
        make_scheduler(app)
    assert words in str(info.value)
    if "://" in str(value):
        assert isinstance(info.value, UnknownBackendError)


def test_an_ack_timeout_the_socket_timeout_would_cut_short_fails_at_start_up(
    make_app: Any,
) -> None:
    options = {"socket_timeout": 0.3}
    app = make_app(redbeat_replica_acks=1, redbeat_redis_options=options)  # timeout 0.5 s
    with pytest.raises(ConfigurationError) as info:
        make_scheduler(app)
    assert info.value.setting == "redbeat_replica_ack_timeout"
    assert "socket_timeout (0.3s)" in str(info.value)
    fine = make_app(
        redbeat_replica_acks=1, redbeat_replica_ack_timeout=0.2, redbeat_redis_options=options
    )
    make_scheduler(fine).close()


@pytest.mark.parametrize("replica_acks", [0, 1], ids=["commit", "commit-and-wait"])
def test_scripts_survive_a_flushed_script_cache(
    make_app: Any, published: list[str], client: Any, replica_acks: int
) -> None:
    """A restarted or failed-over server has no scripts cached: NOSCRIPT is handled (also by
    the commit that is pipelined with WAIT, which sends EVALSHA itself)."""
    app = make_app(redbeat_replica_acks=replica_acks, redbeat_replica_ack_timeout=0.01)
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        client.script_flush()
        due_entry(app, "a", task="tasks.a")
        scheduler.tick()
        assert published == ["tasks.a"]
    finally:
        scheduler.close()


def test_a_standby_never_blocks_in_beat_init(make_app: Any, client: Any) -> None:
    """celery-redbeat's beat_init handler blocked until it got the lock; ours tries once."""
    from redbeat.schedulers import acquire_distributed_beat_lock

    client.set("redbeat::lock", "held-by-another-beat", px=60_000)
    scheduler = make_scheduler(make_app())

    class Service:
        pass

    service = Service()
    service.scheduler = scheduler  # type: ignore[attr-defined]
    try:
        acquire_distributed_beat_lock(sender=service)  # returns at once
        assert scheduler.lock is not None
        assert not scheduler.lock.held
    finally:
        scheduler.close()


def test_a_scheduled_key_without_its_hash_is_dropped_quietly(
    app: Any, published: list[str], client: Any
) -> None:
    client.zadd("redbeat::schedule", {"redbeat:ghost": 1})
    due_entry(app, "real", task="tasks.real")
    scheduler = make_scheduler(app)
    try:
        scheduler.tick()
        assert published == ["tasks.real"]
        assert client.zscore("redbeat::schedule", "redbeat:ghost") is None
        assert client.hlen("redbeat::quarantine") == 0
    finally:
        scheduler.close()


def test_a_future_one_off_is_stored_at_its_own_time(app: Any, client: Any) -> None:
    at = datetime.now(UTC) + timedelta(hours=2)
    entry = RedBeatSchedulerEntry("later", "tasks.later", clocked(at), app=app).save()
    assert entry.due_at == at
    assert client.zscore("redbeat::schedule", "redbeat:later") == pytest.approx(at.timestamp())


def test_a_static_entry_that_cannot_be_stored_is_skipped_with_its_name(
    make_app: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Lunar:
        """A schedule class no codec knows."""

        def is_due(self, last_run_at: Any) -> Any: ...

        def remaining_estimate(self, last_run_at: Any) -> Any:
            return timedelta(seconds=60)

    app = make_app(
        beat_schedule={
            "fine": {"task": "tasks.fine", "schedule": 60.0},
            "lunar": {"task": "tasks.lunar", "schedule": Lunar()},
        }
    )
    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        make_scheduler(app).close()
    assert client.exists("redbeat:fine")
    assert not client.exists("redbeat:lunar")
    assert any("'lunar'" in r.getMessage() for r in caplog.records)


def test_clock_skew_against_the_store_is_warned_once(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = make_scheduler(app)
    try:
        with caplog.at_level(logging.WARNING, logger="celery.beat"):
            now = datetime.now(UTC).timestamp()
            scheduler._check_skew(now - 0.5, now)  # within tolerance
            scheduler._check_skew(now - 5, now)
            scheduler._check_skew(now - 5, now)
        warnings = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
        assert len(warnings) == 1
        assert "5.0s ahead of" in warnings[0]
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- prepare ahead


@pytest.fixture
def publish_times() -> Iterator[list[float]]:
    """Wall-clock time of every publish, taken in Celery's ``before_task_publish``."""
    times: list[float] = []

    def record(**_: Any) -> None:
        times.append(datetime.now(UTC).timestamp())

    before_task_publish.connect(record, weak=False)
    yield times
    before_task_publish.disconnect(record)


def entry_due_in(app: Any, name: str, seconds: float) -> tuple[Any, float]:
    """A 60-second interval entry due ``seconds`` from now, saved; and its stored score."""
    entry = RedBeatSchedulerEntry(name, "tasks.add", schedule(60), app=app)
    entry.last_run_at = ago(60 - seconds)
    entry.save()
    return entry, entry.score


def test_entries_due_within_prepare_ahead_are_published_at_their_due_time(
    make_app: Any, client: Any, publish_times: list[float]
) -> None:
    app = make_app(redbeat_prepare_ahead=1.0)
    scheduler = make_scheduler(app)
    try:
        _, score = entry_due_in(app, "soon", 0.8)
        started = datetime.now(UTC).timestamp()
        assert started < score, "the scenario needs the tick to start before the due time"
        scheduler.tick()  # claims, prepares and commits at once, publishes at the due time
        assert len(publish_times) == 1
        assert publish_times[0] >= score  # never early
        # Judged and rescheduled at its due time, not when it was prepared: the phase is kept.
        meta = RedBeatSchedulerEntry.decode_meta(client.hget("redbeat:soon", "meta"), app=app)
        assert meta["last_run_at"].timestamp() == pytest.approx(score, abs=2e-6)
        next_score = client.zscore("redbeat::schedule", "redbeat:soon")
        assert next_score == pytest.approx(score + 60, abs=1e-6)  # exactly: no drift
    finally:
        scheduler.close()


def test_without_prepare_ahead_nothing_is_claimed_before_its_due_time(
    make_app: Any, publish_times: list[float]
) -> None:
    app = make_app(redbeat_prepare_ahead=0)
    scheduler = make_scheduler(app)
    try:
        _, score = entry_due_in(app, "soon", 0.8)
        before = datetime.now(UTC).timestamp()
        interval = scheduler.tick()
        assert publish_times == []
        assert 0 < interval <= score - before  # it sleeps until the due time itself
    finally:
        scheduler.close()


def test_the_beat_wakes_prepare_ahead_before_the_next_due_time(make_app: Any) -> None:
    app = make_app(redbeat_prepare_ahead=0.5)
    scheduler = make_scheduler(app)
    try:
        _, score = entry_due_in(app, "later", 2.0)
        interval = scheduler.tick()
        woken_at = datetime.now(UTC).timestamp() + interval
        assert woken_at == pytest.approx(score - 0.5, abs=0.05)
    finally:
        scheduler.close()


def test_a_burst_prepared_ahead_claims_what_it_can_prepare_in_time_and_the_rest_at_once(
    make_app: Any, client: Any, publish_times: list[float]
) -> None:
    """400 entries due at the same instant: the tick that wakes ahead of it claims only what it
    can prepare before it (a full batch took ~100 ms on a loaded machine, so the first publish
    came late), publishes those at the due time, and claims the rest at once."""
    app = make_app(redbeat_prepare_ahead=0.05)
    scheduler = make_scheduler(app)
    try:
        due_at = datetime.now(UTC).timestamp() + 3.0
        for i in range(400):
            entry = RedBeatSchedulerEntry(f"b{i:03d}", "tasks.add", schedule(60), app=app)
            entry.last_run_at = datetime.fromtimestamp(due_at - 60, UTC)
            entry.save()
        assert datetime.now(UTC).timestamp() < due_at - 0.5, "the scenario needs time to spare"
        interval = scheduler.tick()  # nothing due yet: sleeps until 50 ms before the burst
        while not publish_times:
            assert datetime.now(UTC).timestamp() < due_at + 5, "the burst was never published"
            time.sleep(interval)  # Celery's beat loop does exactly this between ticks
            interval = scheduler.tick()
        assert interval == 0.0  # more are due: claim again at once
        first = len(publish_times)
        assert 50 <= first < 400
        assert min(publish_times) >= due_at - 1e-3  # never early
        while scheduler.tick() == 0.0 and len(publish_times) < 400:
            pass
        assert len(publish_times) == 400
        assert client.zcount("redbeat::schedule", due_at + 59, due_at + 61) == 400  # each once
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- gc freeze

FREEZE_PROBE = """
import gc, sys
from celery import Celery
from redbeat import RedBeatScheduler
app = Celery("probe", broker="memory://")
app.conf.update(redbeat_redis_url=sys.argv[1], redbeat_gc_freeze=sys.argv[2] == "on")
scheduler = RedBeatScheduler(app=app)
before = gc.get_freeze_count()
scheduler.tick()
second = RedBeatScheduler(app=app, lock_key=None)
frozen = gc.get_freeze_count()
second.tick()
print(before, frozen, gc.get_freeze_count())
scheduler.close(); second.close()
"""


@pytest.mark.parametrize("setting", ["on", "off"])
def test_the_first_tick_freezes_start_up_objects_once_per_process(
    redbeat_url: str, setting: str
) -> None:
    """In a process of its own: a freeze is for the whole process."""
    out = subprocess.run(
        [sys.executable, "-c", FREEZE_PROBE, redbeat_url, setting],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    before, after_first, after_second = map(int, out)
    assert before == 0
    if setting == "on":
        assert after_first > 10_000  # Celery, kombu, the app: far more than a few objects
        assert after_second == after_first  # a second scheduler does not freeze again
    else:
        assert after_first == after_second == 0


# ----------------------------------------------------------------------------- next run


@pytest.mark.parametrize(
    "make_schedule",
    [
        lambda: schedule(30),
        lambda: schedule(0.25),
        lambda: schedule(timedelta(hours=1, microseconds=7)),
        lambda: schedule(90, relative=True),  # asked again: relative rounds to whole seconds
        crontab,
        lambda: crontab(minute="*/5"),
        lambda: crontab(minute=30, hour=2),  # 02:30 does not exist on the spring-forward day
        lambda: crontab(minute=0, hour="*/3", day_of_week="mon-fri"),
        lambda: clocked(datetime(2030, 1, 1, tzinfo=UTC)),  # asked again
    ],
    ids=[
        "30s",
        "250ms",
        "1h+7us",
        "relative",
        "every-minute",
        "5-min",
        "02:30",
        "3h-weekdays",
        "clocked",
    ],
)
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC),  # Berlin springs forward at 01:00
        datetime(2026, 10, 25, 0, 30, 0, 123_456, tzinfo=UTC),  # Berlin falls back at 01:00
        datetime(2026, 11, 25, 11, 59, 59, 999_500, tzinfo=UTC),
    ],
)
def test_the_score_after_a_run_is_the_one_next_score_computes(
    make_app: Any, make_schedule: Any, moment: datetime
) -> None:
    """The tick takes the next run from is_due's answer where that is exact; it must be the
    score that asking the schedule again gives, to the millisecond."""
    app = make_app(timezone="Europe/Berlin")
    now = moment.astimezone(app.timezone)
    entry = RedBeatSchedulerEntry("e", "tasks.add", make_schedule(), app=app)
    entry.schedule.nowfun = lambda: now
    entry.last_run_at = now - timedelta(days=400)
    is_due, next_in = entry.is_due()
    entry.last_run_at = now  # what the tick stamps when it runs the entry
    assert entry.score_after_run(next_in if is_due else None) == entry.next_score()


def celery_beat_stop(scheduler: RedBeatScheduler) -> None:
    """What ``celery beat``'s SIGTERM/SIGINT handler does (``Beat.install_sync_handler``):
    ``Service.sync()``, which closes the scheduler, then ``SystemExit``."""
    scheduler.close()
    raise SystemExit()


@pytest.mark.parametrize(
    ("delivery", "published_on_stop"), [("at-most-once", 1), ("at-least-once", 0)]
)
def test_a_stop_while_waiting_for_a_due_time_loses_no_committed_run(
    make_app: Any, client: Any, publish_times: list[float], delivery: str, published_on_stop: int
) -> None:
    """A SIGTERM (here SIGUSR1, handled as Celery's beat handles SIGTERM) arrives
    while the tick waits for a prepared entry's due time. At-most-once has committed the run:
    it is published at once, then the stop goes on. At-least-once has not: nothing is
    published, and the next leader runs it."""
    app = make_app(redbeat_prepare_ahead=1.0, redbeat_delivery=delivery)
    scheduler = make_scheduler(app)

    def stop(signum: int, frame: Any) -> None:
        celery_beat_stop(scheduler)

    previous = signal.signal(signal.SIGUSR1, stop)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        _, score = entry_due_in(app, "soon", 0.9)
        timer.start()
        with pytest.raises(SystemExit):
            scheduler.tick()  # claims and prepares at once, then waits ~0.9 s for the due time
        assert len(publish_times) == published_on_stop
        assert all(t < score for t in publish_times)  # early, rather than lost
        meta = RedBeatSchedulerEntry.decode_meta(client.hget("redbeat:soon", "meta"), app=app)
        assert meta["total_run_count"] == published_on_stop  # committed iff at-most-once
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR1, previous)
        scheduler.close()


@pytest.mark.parametrize(
    ("delivery", "signalled_at", "attempted", "committed_runs"),
    [
        ("at-most-once", {1}, 3, 1),
        ("at-most-once", {1, 2}, 2, 1),  # a second stop stops at once
        ("at-least-once", {1}, 1, 0),
    ],
)
def test_a_stop_while_publishing_loses_no_other_committed_run(
    make_app: Any,
    redbeat_url: str,
    client: Any,
    published: list[str],
    delivery: str,
    signalled_at: set[int],
    attempted: int,
    committed_runs: int,
) -> None:
    """A SIGTERM (here SIGUSR1, handled as Celery's beat handles SIGTERM) arrives inside
    the first of three publishes. At-most-once has committed all three runs: the other two are
    still published, then the stop goes on; a second stop is obeyed at once. At-least-once has
    committed nothing: it stops at once, and the next leader runs all three."""
    broker_url = redbeat_url.rsplit("/", 1)[0] + "/1"  # a real broker: messages can be counted
    app = make_app(redbeat_delivery=delivery, broker_url=broker_url)
    broker = redis.Redis.from_url(broker_url)
    for name in ("a", "b", "c"):
        due_entry(app, name)
    scheduler = make_scheduler(app)

    def stop(signum: int, frame: Any) -> None:
        celery_beat_stop(scheduler)

    lock_held: list[bool] = []

    def signal_during_publish(**_: Any) -> None:
        lock_held.append(bool(client.exists("redbeat::lock")))
        if len(published) in signalled_at:
            os.kill(os.getpid(), signal.SIGUSR1)  # handled here, inside apply_async

    previous = signal.signal(signal.SIGUSR1, stop)
    before_task_publish.connect(signal_during_publish, weak=False)
    try:
        with pytest.raises(SystemExit):
            scheduler.tick()
        assert len(published) == attempted
        assert all(lock_held)  # the handler's close() waits for the dispatch to end
        # Every publish a stop interrupted is lost; the others reached the broker.
        assert broker.llen("celery") == attempted - len(signalled_at)
        assert client.get("redbeat::lock") is None  # closed after dispatching: lock released
        for name in ("a", "b", "c"):
            meta = RedBeatSchedulerEntry.decode_meta(
                client.hget(f"redbeat:{name}", "meta"), app=app
            )
            assert meta["total_run_count"] == committed_runs
    finally:
        before_task_publish.disconnect(signal_during_publish)
        signal.signal(signal.SIGUSR1, previous)
        scheduler.close()
        broker.close()
