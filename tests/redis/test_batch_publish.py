"""A tick's publishes in transport batches (kombu's ``Producer.batch()``), on a real Redis
broker: every message arrives once, a failed flush fails every run it held (and, under
at-least-once, leaves them due), and a broker that cannot batch publishes one by one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from celery.signals import after_task_publish
from redbeat_test_support import ago

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_redis.testing.servers import ServerProcess


@pytest.fixture(scope="session")
def redbeat_server_kind() -> str:
    """One kind: the broker is kombu's Redis transport, the same on both."""
    return "valkey"


def due(app: Celery, count: int) -> None:
    for i in range(count):
        entry = RedBeatSchedulerEntry(f"e{i:02d}", f"tasks.t{i:02d}", schedule(60), app=app)
        entry.last_run_at = ago(61)
        entry.save()


def queued(client: Any) -> list[dict[str, Any]]:
    """The messages in the broker's default queue (database 1), oldest first."""
    return [json.loads(raw) for raw in reversed(client.lrange("celery", 0, -1))]


def tick(app: Celery) -> None:
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        scheduler.tick()  # writes the history the first one held
    finally:
        scheduler.close()


@pytest.mark.parametrize("batch", [100, 10, 1])
def test_every_run_reaches_the_broker_once(
    make_app: Callable[..., Celery], redbeat_url: str, broker: Any, batch: int
) -> None:
    app = make_app(broker_url=redbeat_url[:-1] + "1", redbeat_publish_batch=batch)
    due(app, 25)
    in_broker: list[int] = []  # what had reached the broker as each message was handed over

    def record(**_: Any) -> None:
        in_broker.append(broker.llen("celery"))

    after_task_publish.connect(record, weak=False)
    try:
        tick(app)
    finally:
        after_task_publish.disconnect(record)
    if batch == 1:
        assert in_broker == list(range(1, 26))  # each sent as it is published
    elif batch == 10:  # held, and sent 8 first (the first run goes out soon), then 10 at a
        # time: after_task_publish fires when a message is held
        assert in_broker == [0] * 8 + [8] * 10 + [18] * 7
    else:  # 8 first, then the rest (up to the batch size) at the end
        assert in_broker == [0] * 8 + [8] * 17
    messages = queued(broker)
    assert sorted(m["headers"]["task"] for m in messages) == [f"tasks.t{i:02d}" for i in range(25)]
    assert len({m["headers"]["id"] for m in messages}) == 25
    history = Schedule(app).history(limit=100)
    assert {r.outcome for r in history} == {"sent"}
    assert {r.task_id for r in history} == {m["headers"]["id"] for m in messages}


def test_a_failed_flush_fails_every_run_it_held_and_they_stay_due(
    make_app: Callable[..., Celery],
    redbeat_server: ServerProcess,
    broker: Any,
    client: Any,
) -> None:
    """The broker's user may not LPUSH: the batch's pipeline fails when it is flushed, so no
    message was sent; under at-least-once every run it held is recorded as failed and stays
    due."""
    redbeat_server.call("ACL", "SETUSER", "sender", "on", ">pw", "~*", "&*", "+@all", "-lpush")
    url = f"redis://sender:pw@127.0.0.1:{redbeat_server.port}/1"
    app = make_app(broker_url=url, redbeat_publish_batch=10, redbeat_delivery="at-least-once")
    due(app, 5)
    tick(app)
    assert queued(broker) == []
    history = Schedule(app).history(limit=100)
    assert [r.outcome for r in history] == ["failed"] * 5
    assert "no permissions to run the 'lpush' command" in (history[0].reason or "")
    for i in range(5):  # left due: tried again (after a backoff)
        meta = json.loads(client.hget(f"redbeat:e{i:02d}", "meta"))
        assert meta["total_run_count"] == 0


@pytest.fixture
def broker(redbeat_url: str) -> Any:
    """A client on the broker's database (1 of the test server)."""
    import redis

    conn = redis.Redis.from_url(redbeat_url[:-1] + "1")
    try:
        yield conn
    finally:
        conn.close()
