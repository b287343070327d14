"""``redbeat_replica_acks``: a busy tick's commit is on a replica before its entries go out.

Redis replicates asynchronously. Under at-most-once delivery the beat commits a run (the entry's
next due time) and then publishes it; a master that dies after the commit but before sending
it to its replica takes the commit with it, the promoted replica still has that run due, and
the beat publishes it again. With ``redbeat_replica_acks = 1`` the commit is followed by
``WAIT 1`` in the same round trip and nothing is published until the replica has it, so the
master dying in that window costs the publish (the replica runs it instead), not a duplicate.

The window is made wide on purpose: the replica is stopped (SIGSTOP) while the beat commits, so
it acknowledges nothing when the master is killed. Its socket still takes the commit's bytes
(the kernel does that for a stopped process), so the test then puts the entry back on the
promoted replica as a commit lost with the master leaves it. The same test without the setting
shows the duplicate that the setting prevents.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import Published, ago, recording_publishes, wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.runtime import get_runtime
from redbeat_core.typing import EntryUpdate
from redbeat_redis.testing.sentinel import SentinelTopology
from redbeat_redis.testing.servers import ServerProcess

TASK = "tasks.hourly"
KEY = "redbeat:hourly"
DEADLINE = 60.0


@pytest.fixture
def published() -> Iterator[Published]:
    with recording_publishes() as record:
        yield record


def published_runs(record: Published) -> int:
    """How many times the hourly entry was published."""
    return record.tasks.count(TASK)


def run_count(node: ServerProcess) -> int:
    """The entry's total_run_count as ``node`` has it (0 when it never ran)."""
    meta = node.call("HGET", KEY, "meta")
    return 0 if meta is None else int(json.loads(meta)["total_run_count"])


def hourly_entry(app: Celery, topology: SentinelTopology) -> None:
    """An hourly entry that last ran an hour ago (due now), on the master and its replica."""
    RedBeatSchedulerEntry("hourly", TASK, schedule(3600), last_run_at=ago(3600), app=app).save()
    (replica,) = topology.replicas_of_master()
    wait_for(lambda: replica.call("EXISTS", KEY) == 1, 10, "the entry reached the replica")


def test_a_tick_returns_only_once_the_replica_has_its_commit(
    make_sentinel_app: Callable[..., Celery],
    sentinel_topology: SentinelTopology,
    published: Published,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A long timeout: a replica just re-attached by an earlier test's failover can take over
    # 100 ms to send its first acknowledgement.
    app = make_sentinel_app(redbeat_replica_acks=1, redbeat_replica_ack_timeout=3.0)
    hourly_entry(app, sentinel_topology)
    (replica,) = sentinel_topology.replicas_of_master()
    scheduler = RedBeatScheduler(app=app)
    try:
        with caplog.at_level(logging.WARNING):
            scheduler.tick()
        assert published_runs(published) == 1
        # Read at once, no waiting: the tick waited for the replica before publishing.
        assert run_count(replica) == 1
        assert "acknowledged the commit" not in caplog.text
    finally:
        scheduler.close()


def test_missing_acknowledgements_are_reported_once_and_their_return_too(
    make_sentinel_app: Callable[..., Celery],
    sentinel_topology: SentinelTopology,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_sentinel_app(redbeat_replica_acks=1, redbeat_replica_ack_timeout=0.05)
    hourly_entry(app, sentinel_topology)
    store = get_runtime(app).store
    (replica,) = sentinel_topology.replicas_of_master()
    assert replica.pid is not None

    def commit(count: int) -> bool:
        meta = json.dumps({"last_run_at": None, "total_run_count": count})
        return bool(store.commit(None, [EntryUpdate("hourly", meta, time.time() + 3600)]))

    with caplog.at_level(logging.WARNING):
        os.kill(replica.pid, signal.SIGSTOP)
        try:
            assert [commit(n) for n in (1, 2, 3)] == [True] * 3  # owned; warned once
        finally:
            os.kill(replica.pid, signal.SIGCONT)
        assert caplog.text.count("0 of the 1 replicas asked for") == 1
        assert "acknowledge commits again" not in caplog.text
        wait_for(
            lambda: commit(4) and "acknowledge commits again (1 of 1)" in caplog.text,
            10,
            "the resumed replica acknowledges again",
        )
    assert caplog.text.count("0 of the 1 replicas asked for") == 1
    assert run_count(replica) == 4


def lose_the_commit(node: ServerProcess, meta: Any, score: Any) -> None:
    """Put the entry back as it was before the beat's commit, on the promoted replica: as if
    the old master had died before sending the commit (here it sent it, to a replica that was
    stopped but whose socket took the bytes)."""
    node.call("HSET", KEY, "meta", meta)
    node.call("ZADD", "redbeat::schedule", score, KEY)
    assert run_count(node) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("acks", "expected"),
    [(0, 2), (1, 1)],
    ids=["without-acks-it-runs-twice", "with-acks-it-runs-once"],
)
def test_a_commit_the_replica_never_got_is_not_published_twice(
    make_sentinel_app: Callable[..., Celery],
    sentinel_topology: SentinelTopology,
    published: Published,
    caplog: pytest.LogCaptureFixture,
    acks: int,
    expected: int,
) -> None:
    # A long ack timeout (below the lock's renew interval), so that the master dies while the
    # tick still waits for the stopped replica.
    app = make_sentinel_app(redbeat_replica_acks=acks, redbeat_replica_ack_timeout=3.0)
    hourly_entry(app, sentinel_topology)
    master = sentinel_topology.master()
    meta, score = master.call("HGET", KEY, "meta"), master.call("ZSCORE", "redbeat::schedule", KEY)
    (replica,) = sentinel_topology.replicas_of_master()
    assert replica.pid is not None
    scheduler = RedBeatScheduler(app=app)
    deadline = time.monotonic() + DEADLINE
    os.kill(replica.pid, signal.SIGSTOP)  # it acknowledges nothing while stopped
    try:
        tick = threading.Thread(target=scheduler.tick, daemon=True)
        tick.start()
        wait_for(lambda: run_count(master) == 1, 10, "the beat committed the run on the master")
        sentinel_topology.kill_master()
        tick.join(timeout=10)
        assert not tick.is_alive(), "the tick did not return after the master died"
        # With acks, nothing went out while the replica did not have the commit.
        assert published_runs(published) == expected - 1
    finally:
        os.kill(replica.pid, signal.SIGCONT)
    try:
        assert sentinel_topology.wait_for_failover(DEADLINE) == (replica.host, replica.port)
        lose_the_commit(replica, meta, score)
        with caplog.at_level(logging.WARNING):
            while published_runs(published) < expected and time.monotonic() < deadline:
                time.sleep(max(0.0, min(scheduler.tick(), deadline - time.monotonic())))
        assert published_runs(published) == expected
        assert run_count(replica) == 1  # the one run the new master knows of
        if acks:
            # The new master has no replica yet: the beat says so once, and publishes anyway.
            assert caplog.text.count("0 of the 1 replicas asked for") == 1
    finally:
        scheduler.close()
