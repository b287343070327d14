"""Code written against celery-redbeat 2.4.2's Python API runs unchanged (issue #17).

Each test is one thing such code does, taken from celery-redbeat's own tests and users' test
suites, against a real server: a client assigned to ``app.redbeat_redis`` with a
``memory://`` broker, ``except redis.ConnectionError`` around entry calls, changing
``app.redbeat_conf`` and the scheduler's lock settings, the lock's redis-py methods and the
scheduler's ``schedule`` property.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import ago

import redbeat.schedulers
from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import (
    BrokenStoreError,
    LockNotOwnedError,
    StoreUnavailableError,
    UnknownBackendError,
)
from redbeat_core.locks import NullLock
from redbeat_core.runtime import RUNTIME_ATTRIBUTE, get_runtime
from redbeat_redis.testing.servers import free_port


@pytest.fixture
def bare_app() -> Iterator[Celery]:
    """An app as users' test suites make it: a ``memory://`` broker and no RedBeat URL."""
    app = Celery("users-tests", broker="memory://", set_as_current=False)
    yield app
    runtime = getattr(app, RUNTIME_ATTRIBUTE, None)
    if runtime is not None:
        runtime.close()
    app.close()


def due(app: Any, name: str, every: float = 30) -> RedBeatSchedulerEntry:
    entry = RedBeatSchedulerEntry(name, "tasks.add", schedule(every), app=app)
    entry.last_run_at = ago(every * 2)
    return entry.save()


# --------------------------------------------------------------- 1. an assigned client


def test_an_assigned_client_serves_an_app_with_a_memory_broker(
    bare_app: Celery, client: Any
) -> None:
    bare_app.redbeat_redis = client  # type: ignore[attr-defined]
    entry = RedBeatSchedulerEntry("e", "tasks.add", schedule(30), app=bare_app).save()
    assert client.exists("redbeat:e")
    loaded = RedBeatSchedulerEntry.from_key("redbeat:e", app=bare_app)
    assert loaded.score == entry.score
    assert next(loaded).total_run_count == 1
    loaded.delete()
    assert not client.exists("redbeat:e")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the broker URL is not used: no fallback warning
        describe = get_runtime(bare_app).backend.describe()
    assert describe.startswith("redis -> the client assigned to app.redbeat_redis (127.0.0.1:")


def test_an_assigned_client_serves_an_app_without_any_url(bare_app: Celery, client: Any) -> None:
    bare_app.conf.broker_url = None
    bare_app.redbeat_redis = client  # type: ignore[attr-defined]
    RedBeatSchedulerEntry("e", "tasks.add", schedule(30), app=bare_app).save()
    assert client.exists("redbeat:e")


def test_a_url_given_to_redbeat_wins_over_routing(make_app: Any, client: Any) -> None:
    """An assigned client does not override an explicit URL of another backend's scheme."""
    app = make_app(redbeat_url="nostore://nowhere/0")
    app.redbeat_redis = client
    with pytest.raises(UnknownBackendError, match="nostore"):
        assert get_runtime(app).backend is None  # raises first


# --------------------------------------------------------------- 3. redis-py's errors


def test_an_outage_is_also_a_redis_connection_error(make_app: Any) -> None:
    app = make_app(
        redbeat_url=f"redis://127.0.0.1:{free_port()}/0",
        redbeat_redis_options={"retry_period": 0, "socket_connect_timeout": 1},
    )
    entry = RedBeatSchedulerEntry("e", "tasks.add", schedule(30), app=app)
    with pytest.raises(redis.ConnectionError) as info:  # what celery-redbeat code catches
        entry.save()
    assert isinstance(info.value, StoreUnavailableError)
    with pytest.raises(redis.ConnectionError):
        RedBeatSchedulerEntry.from_key("redbeat:e", app=app)
    with pytest.raises(redis.ConnectionError):
        entry.delete()


def test_a_broken_key_is_also_a_redis_response_error(app: Any, client: Any) -> None:
    client.set("redbeat::schedule", "not a sorted set")
    entry = RedBeatSchedulerEntry("e", "tasks.add", schedule(30), app=app)
    with pytest.raises(redis.ResponseError) as info:
        entry.save()
    assert isinstance(info.value, BrokenStoreError)
    assert "redbeat::schedule" in str(info.value)


# --------------------------------------------------------------- 4. app.redbeat_conf


def test_conf_schedule_replaces_the_static_schedule_before_setup(app: Any, client: Any) -> None:
    conf = redbeat.schedulers.ensure_conf(app)
    assert conf is app.redbeat_conf
    conf.schedule = {"mine": {"task": "tasks.add", "schedule": 60}}
    assert app.conf.beat_schedule == {"mine": {"task": "tasks.add", "schedule": 60}}
    scheduler = RedBeatScheduler(app=app)
    try:
        assert client.smembers("redbeat::statics") == {"mine"}
        assert client.exists("redbeat:mine")
    finally:
        scheduler.close()


def test_conf_lock_settings_reach_a_scheduler_built_afterwards(app: Any) -> None:
    conf = redbeat.schedulers.ensure_conf(app)
    assert conf.lock_timeout is None  # unset, as celery-redbeat reports it
    conf.lock_timeout = 3
    scheduler = RedBeatScheduler(app=app)
    try:
        assert scheduler.lock_timeout == 3
        assert conf.lock_timeout == 3
    finally:
        scheduler.close()
    conf.lock_key = None
    single = RedBeatScheduler(app=app)
    try:
        assert single.lock_key is None
        single.tick()
        assert isinstance(single.lock, NullLock)
    finally:
        single.close()


def test_conf_key_prefix_moves_entries_written_afterwards(app: Any, client: Any) -> None:
    redbeat.schedulers.ensure_conf(app).key_prefix = "other:"
    assert app.redbeat_conf.schedule_key == "other::schedule"
    RedBeatSchedulerEntry("e", "tasks.add", schedule(30), app=app).save()
    assert client.exists("other:e")
    assert client.zscore("other::schedule", "other:e") is not None
    assert not client.exists("redbeat:e")


def test_conf_either_or_and_is_key_in_conf(app: Any) -> None:
    app.conf.my_flag = 0  # a false value that is set
    conf = redbeat.schedulers.RedBeatConfig(app)
    assert conf.either_or("my_flag", 99) == 0
    assert conf.either_or("my_missing", 99) == 99
    assert conf.is_key_in_conf("MY_FLAG")
    assert not conf.is_key_in_conf("my_missing")
    with pytest.warns(UserWarning, match="Celery v3 configuration"):
        conf.either_or("MY_FLAG")


def test_a_conf_assigned_by_the_user_is_kept_and_read(app: Any) -> None:
    mine = redbeat.schedulers.RedBeatConfig(app)
    app.redbeat_conf = mine
    mine.lock_timeout = 4
    scheduler = RedBeatScheduler(app=app)
    try:
        assert app.redbeat_conf is mine
        assert scheduler.lock_timeout == 4
    finally:
        scheduler.close()


def test_conf_refuses_what_it_cannot_honour_with_the_fix(app: Any) -> None:
    conf = redbeat.schedulers.ensure_conf(app)
    with pytest.raises(AttributeError, match="set key_prefix"):
        conf.schedule_key = "elsewhere"
    with pytest.warns(UserWarning, match="redis_url.*changes nothing"):
        conf.redis_url = "redis://127.0.0.1:1/0"


# --------------------------------------------------------------- 5. the scheduler's lock settings


def test_assigning_lock_key_none_before_the_first_tick_runs_without_a_lock(
    app: Any, client: Any
) -> None:
    due(app, "e")
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.lock_key = None
        assert scheduler.lock_key is None
        scheduler.tick()
        assert not client.exists("redbeat::lock")
        assert json.loads(client.hget("redbeat:e", "meta"))["total_run_count"] == 1
    finally:
        scheduler.close()


def test_assigning_lock_key_and_timeout_moves_the_lease(app: Any, client: Any) -> None:
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert client.exists("redbeat::lock")
        scheduler.lock_key = "redbeat:elsewhere"
        scheduler.lock_timeout = 7
        assert not client.exists("redbeat::lock")  # the old lease is given up at once
        scheduler.tick()
        assert 6000 < client.pttl("redbeat:elsewhere") <= 7000
    finally:
        scheduler.close()


# --------------------------------------------------------------- 6. scheduler.lock


def test_the_lock_answers_owned_extend_and_release(make_app: Any, client: Any) -> None:
    app = make_app(redbeat_lock_timeout=10)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        lock = scheduler.lock
        assert lock is not None
        assert lock.owned() is True  # type: ignore[attr-defined]
        assert lock.extend(30) is True  # type: ignore[attr-defined]
        assert 29000 < client.pttl("redbeat::lock") <= 30000  # from now, not added up
        client.set("redbeat::lock", "another beat's token")  # another beat took it
        assert lock.owned() is False  # type: ignore[attr-defined]
        with pytest.raises(redis.exceptions.LockNotOwnedError) as info:
            lock.extend(30)  # type: ignore[attr-defined]
        assert isinstance(info.value, LockNotOwnedError)
        lock.release()  # not ours: left alone
        assert client.get("redbeat::lock") == "another beat's token"
    finally:
        scheduler.close()


def test_extend_on_a_lock_never_taken_raises(app: Any) -> None:
    scheduler = RedBeatScheduler(app=app)
    try:
        lock = scheduler._lock()
        assert lock.owned() is False  # type: ignore[attr-defined]
        with pytest.raises(redis.exceptions.LockNotOwnedError):
            lock.extend()  # type: ignore[attr-defined]
    finally:
        scheduler.close()


def test_the_single_beat_lock_has_the_same_methods() -> None:
    lock = NullLock()
    with pytest.raises(LockNotOwnedError):
        lock.extend(5)
    lock.acquire()
    assert lock.owned()
    assert lock.extend(5)


# --------------------------------------------------------------- 7. scheduler.schedule


def test_schedule_is_the_due_entries_plus_the_next_one(make_app: Any) -> None:
    app = make_app(beat_max_loop_interval=300)
    for name in ("a", "b"):
        due(app, name)
    now = datetime.now(UTC)
    for name, minutes in (("soon", 1), ("later", 2), ("far", 60)):
        entry = RedBeatSchedulerEntry(name, "tasks.add", schedule(3600), app=app)
        entry.last_run_at = now - timedelta(minutes=60 - minutes)
        entry.save()
    scheduler = RedBeatScheduler(app=app)
    try:
        assert set(scheduler.schedule) == {"a", "b", "soon"}
    finally:
        scheduler.close()


def test_schedule_pages_through_many_due_entries(make_app: Any) -> None:
    app = make_app(redbeat_batch_size=3)
    names = {f"e{i}" for i in range(8)}
    for name in names:
        due(app, name)
    scheduler = RedBeatScheduler(app=app)
    try:
        assert set(scheduler.schedule) == names
    finally:
        scheduler.close()


def test_no_warning_is_raised_for_the_supported_changes(app: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conf = redbeat.schedulers.ensure_conf(app)
        conf.lock_timeout = 5
        conf.lock_key = "redbeat:lk"
        conf.key_prefix = "redbeat"
        conf.schedule = {}


# --------------------------------------------------------------- client construction


def test_patching_redis_from_url_intercepts_the_client(
    make_app: Any, redbeat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests intercept client creation by patching ``redis.Redis.from_url``, as with
    celery-redbeat: the patch is looked up when the client is built."""
    original = redis.Redis.from_url
    calls: list[str] = []

    def from_url(url: str, **kwargs: Any) -> Any:
        calls.append(url)
        return original(url, **kwargs)

    monkeypatch.setattr(redis.Redis, "from_url", from_url)
    app = make_app()
    RedBeatSchedulerEntry("e", "tasks.add", schedule(30), app=app).save()
    assert calls == [redbeat_url]
    assert app.redbeat_redis.exists("redbeat:e")
