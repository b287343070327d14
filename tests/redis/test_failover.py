"""Leadership changes and storage outages, against real servers.

A beat that stops without releasing its lock, its connections open, is replaced once the lock's
TTL runs out (one whose process dies is replaced sooner: test_liveness.py); a beat
whose storage goes away keeps its loop alive and comes back as leader or standby, as the lock
key dictates. Deadlines are polls, never sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from celery.signals import before_task_publish
from redbeat_test_support import wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import StoreUnavailableError


@pytest.fixture
def published() -> Iterator[list[str]]:
    names: list[str] = []

    def record(headers: Any = None, **_: Any) -> None:
        names.append(headers["task"])

    before_task_publish.connect(record, weak=False)
    yield names
    before_task_publish.disconnect(record)


def due(app: Any, name: str) -> None:
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(60), app=app)
    entry.last_run_at = datetime.now(UTC) - timedelta(minutes=5)
    entry.save()


FAST_LOCK = {"redbeat_lock_timeout": 1.0, "redbeat_lock_poll_interval": 0.1}


def test_standby_takes_over_when_the_leader_dies_without_releasing(
    make_app: Any, published: list[str]
) -> None:
    leader = RedBeatScheduler(app=make_app(**FAST_LOCK))
    standby = RedBeatScheduler(app=make_app(**FAST_LOCK))
    try:
        leader.tick()
        assert leader.lock is not None
        assert leader.lock.held
        # The leader freezes: it never ticks or releases again, and its connections stay open
        # (SIGSTOP, a partition), so only the lease can tell. The standby's tick waits for a
        # release for the poll interval (then tries again at once, 0.0).
        assert standby.tick() == 0.0
        assert standby.lock is not None
        assert not standby.lock.held
        died = time.monotonic()
        wait_for(
            lambda: bool(standby.tick() is not None and standby.lock.held),
            5,
            "the standby took the lock",
        )
        assert time.monotonic() - died >= 0.5  # not before the lease could have lapsed
        due(standby.app, "after")
        standby.tick()
        assert published == ["tasks.after"]
        # The old leader, if it wakes up, finds its lock gone and stands down without dispatching.
        due(leader.app, "zombie")
        leader.tick()
        assert published == ["tasks.after"]
        assert not leader.lock.held
        standby.tick()
        assert published == ["tasks.after", "tasks.zombie"]  # the real leader runs it, once
    finally:
        standby.close()
        leader.close()


def test_storage_outage_keeps_the_loop_alive_and_recovers(
    redbeat_server_factory: Any, published: list[str]
) -> None:
    server = redbeat_server_factory()
    app = Celery("outage", set_as_current=False)
    app.conf.update(
        {
            "broker_url": "memory://",
            "redbeat_redis_url": server.url,
            "redbeat_redis_options": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
            **FAST_LOCK,
        }
    )
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
        server.kill()
        for _ in range(3):
            assert scheduler.tick() == pytest.approx(0.1)  # no exception reaches Celery's loop
        server.restart()  # empty: the lock key did not survive, so leadership is re-acquired
        due(app, "back")
        wait_for(
            lambda: (scheduler.tick(), published == ["tasks.back"])[1],
            10,
            "the entry saved after the outage published",
        )
        assert scheduler.lock.held
        assert scheduler.lock.fence is not None
        assert scheduler.lock.fence.epoch == 1
    finally:
        scheduler.close()
        app.close()


def outage_app(url: str, **options: Any) -> Celery:
    app = Celery("startup", set_as_current=False)
    app.conf.update(
        {
            "broker_url": "memory://",
            "redbeat_redis_url": url,
            "redbeat_redis_options": {"socket_connect_timeout": 0.5, **options},
            "beat_schedule": {"static": {"task": "tasks.static", "schedule": 60.0}},
        }
    )
    return app


def test_unreachable_storage_at_start_up_is_an_error_saying_what_to_do(
    redbeat_server_factory: Any,
) -> None:
    server = redbeat_server_factory()
    server.kill()
    app = outage_app(server.url)
    try:
        with pytest.raises(StoreUnavailableError) as failure:
            RedBeatScheduler(app=app)
        message = str(failure.value)
        assert f"redis://127.0.0.1:{server.port}/0" in message
        assert "redbeat_redis_url" in message
        assert "'retry_period'" in message
    finally:
        app.close()


def test_with_a_retry_period_start_up_waits_for_the_storage(
    redbeat_server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """celery-redbeat's ``retry_period`` (-1: forever) also covers start-up: the beat comes up
    once the server does, with its statics stored."""
    server = redbeat_server_factory()
    server.kill()
    app = outage_app(server.url, retry_period=-1)
    built: list[RedBeatScheduler] = []
    starting = threading.Thread(target=lambda: built.append(RedBeatScheduler(app=app)), daemon=True)
    try:
        with caplog.at_level(logging.WARNING, logger="celery.beat"):
            starting.start()
            wait_for(lambda: "Retrying Redis connection" in caplog.text, 10, "a retry logged")
            assert not built  # still waiting for the server
            server.restart()
            starting.join(timeout=60)
        assert not starting.is_alive()
        (scheduler,) = built
        assert set(scheduler.store.statics()) == {"static"}
    finally:
        if starting.is_alive() and not server.is_running():
            server.restart()  # a failed assertion must not leave the start-up retrying forever
        starting.join(timeout=60)
        for scheduler in built:
            scheduler.close()
        app.close()
