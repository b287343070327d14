"""A real beat through a real Sentinel failover: SIGKILL the master while a 1-second entry runs.

The scheduler is driven the way ``celery beat`` drives it: ``tick()`` in a loop, sleeping for
what it returns (that sleep is the beat's own schedule, not synchronisation; every wait on the
topology is a poll with a deadline). Publishes are counted with Celery's ``before_task_publish``
signal and each dispatch's due time is taken from RedBeat's ``redbeat_after_dispatch`` hook.

Measured per run and written to ``/tmp/redbeat-sentinel-failover.jsonl`` (and printed, see
``pytest -s``):

* ``gap_s``: seconds between the last publish before the kill and the first one after it;
* ``missed``: runs lost to the failover: a beat without one would have run ``round(gap_s)``
  times in that gap, this one ran once (the due time pending at the kill, late: with an
  interval schedule Celery runs a late entry once and schedules the next run one interval
  after that, it does not catch up), so ``missed = round(gap_s) - 1``;
* ``first_after_late_s``: how late that first run after the failover was;
* ``duplicated``: due times dispatched more than once (at-most-once delivery: must be 0);
* ``failover_s``: seconds from the kill until every sentinel named the new master.

Two cases: the lock key was replicated before the kill (the beat keeps its lock: same fencing
epoch, no "lock lost"), and the replica never got it (the beat finds the lock gone on the new
master and re-acquires it with a higher epoch).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from celery import Celery
from celery.schedules import schedule
from celery.signals import before_task_publish

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.hookspecs import hookimpl
from redbeat_redis.testing.sentinel import SentinelTopology

RESULTS = Path("/tmp/redbeat-sentinel-failover.jsonl")
TASK = "tasks.every_second"
INTERVAL = 1.0
BEFORE = 3  # dispatches before the kill
AFTER = 3  # dispatches after the failover
DEADLINE = 60.0  # seconds for the whole run; the failover itself takes a few


@pytest.fixture
def publishes() -> Iterator[list[float]]:
    """Wall-clock time of every publish of TASK, from Celery's own signal."""
    times: list[float] = []

    def record(sender: Any = None, headers: Any = None, **_: Any) -> None:
        if (headers or {}).get("task") == TASK:
            times.append(time.time())

    before_task_publish.connect(record, weak=False)
    yield times
    before_task_publish.disconnect(record)


@attrs.define
class Recorder:
    """A RedBeat plugin recording dispatches (with their due times) and lock changes."""

    dispatched: list[tuple[float, float]] = attrs.field(factory=list)  # (due_at, published_at)
    acquired: list[int] = attrs.field(factory=list)  # fencing epochs
    lost: list[str] = attrs.field(factory=list)

    @hookimpl
    def redbeat_after_dispatch(self, scheduler: Any, dispatched: Any) -> None:
        self.dispatched.extend((d.due_at, d.published_at) for d in dispatched)

    @hookimpl
    def redbeat_lock_acquired(self, scheduler: Any, fence: Any) -> None:
        self.acquired.append(fence.epoch)

    @hookimpl
    def redbeat_lock_lost(self, scheduler: Any, reason: str) -> None:
        self.lost.append(reason)


def run_until(scheduler: RedBeatScheduler, done: Callable[[], bool], deadline: float) -> None:
    """Celery beat's loop: tick, sleep what the tick returned; stop when ``done`` or late."""
    while not done():
        if time.monotonic() > deadline:
            return
        interval = scheduler.tick()
        time.sleep(min(max(interval, 0.0), max(0.0, deadline - time.monotonic())))


def drop_lock_on_replicas(topology: SentinelTopology, lock_key: str) -> None:
    """Make the replica miss the lock key, as if the master died before replicating it."""
    for replica in topology.replicas_of_master():
        replica.call("CONFIG", "SET", "replica-read-only", "no")
        try:
            assert replica.call("DEL", lock_key) == 1
        finally:
            replica.call("CONFIG", "SET", "replica-read-only", "yes")
    assert topology.master().call("EXISTS", lock_key) == 1


@pytest.mark.slow
@pytest.mark.parametrize("lock_replicated", [True, False], ids=["lock-replicated", "lock-lost"])
def test_beat_follows_the_master_through_a_failover(
    make_sentinel_app: Callable[..., Celery],
    sentinel_topology: SentinelTopology,
    redbeat_server_kind: str,
    publishes: list[float],
    lock_replicated: bool,
) -> None:
    app = make_sentinel_app()
    RedBeatSchedulerEntry("every-second", TASK, schedule(INTERVAL), app=app).save()
    scheduler = RedBeatScheduler(app=app)
    recorder = Recorder()
    scheduler._runtime.plugins.register(recorder, name="failover-recorder")
    lock_key = scheduler.config.lock_key
    assert lock_key is not None
    deadline = time.monotonic() + DEADLINE
    failover: dict[str, float] = {}
    try:
        run_until(scheduler, lambda: len(recorder.dispatched) >= BEFORE, deadline)
        assert len(recorder.dispatched) >= BEFORE, "the beat did not dispatch before the kill"
        epoch_before = recorder.acquired[-1]
        if not lock_replicated:
            drop_lock_on_replicas(sentinel_topology, lock_key)

        # run_until slept the tick's answer: the next run is due now, as the master dies.
        killed_at = time.time()
        old_master = sentinel_topology.kill_master()

        def watch() -> None:
            new = sentinel_topology.wait_for_failover(DEADLINE, old=old_master)
            failover["s"] = time.time() - killed_at
            failover["port"] = new[1]

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def resumed() -> bool:
            return sum(1 for _, at in recorder.dispatched if at > killed_at) >= AFTER

        run_until(scheduler, resumed, deadline)
        watcher.join(timeout=max(0.0, deadline - time.monotonic()) + 1)
    finally:
        acquired, lost = list(recorder.acquired), list(recorder.lost)  # before close releases
        scheduler.close()

    before = [(due, at) for due, at in recorder.dispatched if at <= killed_at]
    after = [(due, at) for due, at in recorder.dispatched if at > killed_at]
    dues = [round(due, 3) for due, _ in recorder.dispatched]
    gap = after[0][1] - before[-1][1] if after else float("nan")
    result = {
        "kind": redbeat_server_kind,
        "case": "lock-replicated" if lock_replicated else "lock-lost",
        "failover_s": round(failover.get("s", float("nan")), 2),
        "gap_s": round(gap, 2),
        "missed": max(0, round(gap / INTERVAL) - 1) if after else None,
        "duplicated": len(dues) - len(set(dues)),
        "first_after_late_s": round(after[0][1] - after[0][0], 2) if after else None,
        "dispatched_before": len(before),
        "dispatched_after": len(after),
        "epochs": acquired,
        "lock_lost": lost,
    }
    with RESULTS.open("a") as out:
        out.write(json.dumps(result) + "\n")
    print(f"\nsentinel failover: {json.dumps(result)}")

    assert "s" in failover, "the sentinels never named a new master"
    assert len(after) >= AFTER, f"dispatching did not resume after the failover: {result}"
    # Every publish is one dispatch, and no due time was dispatched twice (at-most-once).
    assert len(publishes) == len(recorder.dispatched)
    assert result["duplicated"] == 0, result
    spacing = [b - a for a, b in itertools.pairwise(publishes)]
    assert min(spacing) > INTERVAL / 2, f"two publishes of one due time: {spacing}"
    # The gap is the failover plus at most a poll interval and a tick, not a lock timeout.
    assert gap < failover["s"] + scheduler.config.lock_poll_interval + 2 * INTERVAL + 1.0, result
    if lock_replicated:
        # The lock key survived on the new master: the same token, the same epoch.
        assert lost == [], result
        assert acquired == [epoch_before], result
    else:
        # The new master had no lock key: the beat noticed and took the lock again.
        assert lost == ["expired"], result
        assert acquired == [epoch_before, epoch_before + 1], result
