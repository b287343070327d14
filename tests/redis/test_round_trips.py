"""Round trips and Redis commands per tick, counted on a real server.

Round trips are counted on the client (every packet redis-py sends and waits on); commands are
counted by the server (``INFO commandstats``, which includes the commands scripts run). The
claim: an idle tick is one round trip and at most five commands whatever is stored; a busy tick
is two round trips whatever the number due or stored, its run history included, and its
server-side work grows by the same few commands per due entry; the start-up sync of
``beat_schedule`` is three round trips whatever its size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
import redis
from celery.signals import before_task_publish

from redbeat import RedBeatScheduler

STORED = 10_000


class CountingConnection(redis.Connection):
    """A real connection that counts what it sends: one send = one round trip here."""

    sent: ClassVar[int] = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


def server_commands(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(
        int(v["calls"])
        for k, v in stats.items()
        if not k.startswith(("cmdstat_info", "cmdstat_config"))
    )


@pytest.fixture(autouse=True)
def core_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count the core's round trips: third-party plugins (metrics) may add their own, which the
    benchmark suite reports separately."""
    monkeypatch.setenv("REDBEAT_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def admin(redbeat_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redbeat_url, decode_responses=True)
    yield client
    client.close()


def fill(admin: Any, due: int, now: float) -> None:
    """10,000 valid entries: ``due`` of them due now, the rest spread over the next hour."""
    admin.flushall()
    pipe = admin.pipeline(transaction=False)
    for i in range(STORED):
        name = f"e{i:05}"
        definition = {
            "name": name,
            "task": "tasks.noop",
            "args": [],
            "kwargs": {},
            "options": {},
            "schedule": {"__type__": "interval", "every": 3600.0, "relative": False},
            "enabled": True,
        }
        pipe.hset(f"redbeat:{name}", "definition", json.dumps(definition))
        score = now - 1 - i / 1000 if i < due else now + 60 + i / 10
        pipe.zadd("redbeat::schedule", {f"redbeat:{name}": score})
    pipe.execute()


def measure_tick(
    make_app: Any, admin: Any, redbeat_url: str, due: int, **conf: Any
) -> tuple[int, int, int]:
    """(round trips, server commands, published) for one tick with ``due`` entries due."""
    now = datetime.now(UTC).timestamp()
    fill(admin, due, now)
    app = make_app(**conf)
    app.redbeat_redis = redis.Redis.from_url(
        redbeat_url, decode_responses=True, connection_class=CountingConnection
    )
    scheduler = RedBeatScheduler(app=app)
    try:
        # Become leader and load both scripts outside the measured tick.
        assert scheduler.try_acquire_lock()
        fence = scheduler.lock.fence  # type: ignore[union-attr]
        scheduler._runtime.store.claim_due(fence, 0, 1)
        scheduler._runtime.store.commit(fence, [])
        published: list[Any] = []

        def count(**_: Any) -> None:
            published.append(1)

        before_task_publish.connect(count, weak=False)
        admin.config_resetstat()
        before = CountingConnection.sent
        try:
            scheduler.tick()
        finally:
            before_task_publish.disconnect(count)
        trips = CountingConnection.sent - before
        return trips, server_commands(admin), len(published)
    finally:
        scheduler.close()


def test_idle_tick_is_one_round_trip_and_at_most_five_commands(
    make_app: Any, admin: Any, redbeat_url: str
) -> None:
    trips, commands, published = measure_tick(make_app, admin, redbeat_url, due=0)
    assert (trips, published) == (1, 0)
    assert commands <= 5


def test_busy_tick_round_trips_are_constant_in_the_number_due(
    make_app: Any, admin: Any, redbeat_url: str
) -> None:
    results = {due: measure_tick(make_app, admin, redbeat_url, due) for due in (1, 100, 1000)}
    assert {due: r[2] for due, r in results.items()} == {1: 1, 100: 100, 1000: 1000}
    assert {r[0] for r in results.values()} == {2}  # claim + commit, whatever is due
    # Server-side work: a fixed part plus the same few commands per due entry (the claim's
    # read, the commit's type check, meta and score).
    c1, c100, c1000 = (results[d][1] for d in (1, 100, 1000))
    per_entry = (c100 - c1) / 99
    assert per_entry == (c1000 - c100) / 900
    assert per_entry <= 4


def test_the_run_history_rides_on_the_next_claim(
    make_app: Any, admin: Any, redbeat_url: str
) -> None:
    """A busy tick's run records are written by the next tick's claim: the busy tick stays
    two round trips, the next one (idle here) one, and the history then holds every run."""
    now = datetime.now(UTC).timestamp()
    fill(admin, 100, now)
    app = make_app()
    app.redbeat_redis = redis.Redis.from_url(
        redbeat_url, decode_responses=True, connection_class=CountingConnection
    )
    scheduler = RedBeatScheduler(app=app)
    try:
        assert scheduler.try_acquire_lock()
        counted = []
        for _ in range(2):
            before = CountingConnection.sent
            scheduler.tick()
            counted.append(CountingConnection.sent - before)
        assert counted == [2, 1]
        assert admin.llen("redbeat::history") == 100
        assert admin.llen("redbeat::history:e00000") == 1
    finally:
        scheduler.close()


def test_waiting_for_replicas_adds_no_round_trip(
    make_app: Any, admin: Any, redbeat_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # WAIT goes in the commit's round trip. This server has no replica: the tick waits out the
    # timeout, says so, and publishes anyway.
    conf = {"redbeat_replica_acks": 1, "redbeat_replica_ack_timeout": 0.05}
    with caplog.at_level(logging.WARNING):
        trips, _, published = measure_tick(make_app, admin, redbeat_url, 100, **conf)
    assert (trips, published) == (2, 100)
    assert caplog.text.count("0 of the 1 replicas asked for (redbeat_replica_acks)") == 1


def test_start_up_sync_is_three_round_trips_whatever_the_number_of_statics(
    make_app: Any, admin: Any, redbeat_url: str
) -> None:
    """README, quick start and the performance page: statics are synced in three round trips
    (the previous names, one script reading the stored entries, one writing), whatever their
    number, whether they are new, changed, unchanged or removed; a sync that changed something
    records it in the audit log, one round trip more."""

    def statics(count: int, every: float) -> dict[str, Any]:
        return {f"s{i:04}": {"task": "tasks.noop", "schedule": every} for i in range(count)}

    app = make_app(beat_schedule=statics(1, 60.0))
    app.redbeat_redis = redis.Redis.from_url(
        redbeat_url, decode_responses=True, connection_class=CountingConnection
    )
    scheduler = RedBeatScheduler(app=app)  # its sync loads both scripts
    trips: dict[tuple[int, str], int] = {}

    def sync(key: tuple[int, str], beat_schedule: dict[str, Any]) -> None:
        app.conf.beat_schedule = beat_schedule
        before = CountingConnection.sent
        scheduler.setup_schedule()
        trips[key] = CountingConnection.sent - before

    try:
        for count in (1, 100, 2000):
            admin.flushall()  # the data, not the scripts
            sync((count, "new"), statics(count, 60.0))
            assert admin.scard("redbeat::statics") == count
            sync((count, "unchanged"), statics(count, 60.0))
            sync((count, "changed"), statics(count, 30.0))
            sync((count, "half removed"), statics(count // 2, 30.0))
            assert admin.scard("redbeat::statics") == count // 2
    finally:
        scheduler.close()
    changed = {trips.pop(key) for key in list(trips) if key[1] != "unchanged"}
    assert (set(trips.values()), changed) == ({3}, {4}), trips
