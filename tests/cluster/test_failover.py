"""A real beat on a real cluster while the primary that owns ``{redbeat}`` is SIGKILLed.

One scheduler (``redbeat.RedBeatScheduler``, ``memory://`` broker) dispatches a 1-second
interval entry; its ticks are driven here exactly as Celery's beat loop drives them (sleep for
what ``tick()`` returns). The primary owning the ``{redbeat}`` slot is killed by its pid; the
cluster promotes its replica (node timeout 1 s); the same scheduler object must carry on.

Measured and written to ``/tmp/redbeat-cluster-failover.json`` (one record per server kind,
also printed): the longest gap between two publishes, the time from the kill to the promotion
and to the first publish after it, the due times missed (whole intervals without a publish)
and the due times published twice (must be none with the default at-most-once delivery).

The kill happens right after a tick, once the replica's offset says it has every write so far:
this measures failover, not the replication window (which the documentation discusses).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from celery.signals import before_task_publish

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core import hookimpl
from redbeat_core.runtime import get_runtime
from redbeat_core.typing import StoredEntry
from redbeat_redis.testing.cluster import ClusterError, ClusterTopology

RESULTS = Path(
    os.environ.get("REDBEAT_CLUSTER_FAILOVER_RESULTS", "/tmp/redbeat-cluster-failover.json")
)
INTERVAL = 1.0
BEFORE_KILL = 3  # publishes before the kill
AFTER_KILL = 4  # publishes after the kill that prove dispatching resumed
PHASE_DEADLINE = 30.0  # generous: a shared 2-core machine


class Recorder:
    """Observer plugin: the due time and publish time of every dispatch."""

    def __init__(self) -> None:
        self.dispatches: list[tuple[float, float]] = []  # (due_at, published_at)
        self.lock_events: list[str] = []

    @hookimpl
    def redbeat_after_dispatch(self, scheduler: Any, dispatched: Sequence[Any]) -> None:
        self.dispatches += [(d.due_at, d.published_at) for d in dispatched]

    @hookimpl
    def redbeat_lock_lost(self, scheduler: Any, reason: str) -> None:
        self.lock_events.append(f"lost:{reason}")

    @hookimpl
    def redbeat_lock_acquired(self, scheduler: Any, fence: Any) -> None:
        self.lock_events.append(f"acquired:{getattr(fence, 'epoch', None)}")


@pytest.fixture
def publishes() -> Iterator[list[float]]:
    """Wall-clock time of every publish, from Celery's own signal."""
    times: list[float] = []

    def record(headers: Any = None, **_: Any) -> None:
        if headers and headers.get("task") == "tasks.every_second":
            times.append(time.time())

    before_task_publish.connect(record, weak=False)
    yield times
    before_task_publish.disconnect(record)


def drive(scheduler: RedBeatScheduler, until: Callable[[], bool], deadline: float) -> list[float]:
    """Tick as Celery's beat does (sleeping what tick() returns) until ``until()`` or the
    deadline. Returns how long each tick took (a tick must never block the beat for long)."""
    durations: list[float] = []
    while not until():
        if time.monotonic() > deadline:
            break
        started = time.monotonic()
        interval = scheduler.tick()
        durations.append(time.monotonic() - started)
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
    return durations


class PromotionWatch(threading.Thread):
    """Observes (never synchronises) when the cluster is healthy again after the kill, on its
    own connections, so the promotion time is not rounded to the beat's ticks."""

    def __init__(self, cluster: ClusterTopology, slot: int, killed: int) -> None:
        super().__init__(daemon=True)
        self.cluster, self.slot, self.killed = cluster, slot, killed
        self.promoted_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.cluster.is_healthy():
                with contextlib.suppress(ClusterError):
                    if self.cluster.node_for_slot(self.slot).port != self.killed:
                        self.promoted_at = time.time()
                        return
            self.stop.wait(0.1)


def record_result(kind: str, result: dict[str, Any]) -> None:
    try:
        everything = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        everything = {}
    everything[kind] = result
    RESULTS.write_text(json.dumps(everything, indent=2, sort_keys=True) + "\n")
    print(f"\ncluster failover ({kind}): {json.dumps(result, sort_keys=True)} -> {RESULTS}")


@pytest.mark.slow
def test_beat_keeps_dispatching_through_a_primary_failover(
    cluster: ClusterTopology,
    make_cluster_app: Callable[..., Celery],
    publishes: list[float],
    redbeat_server_kind: str,
) -> None:
    app = make_cluster_app()
    scheduler = RedBeatScheduler(app=app)
    recorder = Recorder()
    get_runtime(app).plugins.register(recorder, name="failover-recorder")
    entry = RedBeatSchedulerEntry("every_second", "tasks.every_second", schedule(INTERVAL), app=app)
    entry.last_run_at = datetime.now(UTC) - timedelta(seconds=5)
    entry.save()
    slot = cluster.keyslot("{redbeat}")
    old_owner = cluster.node_for_slot(slot)
    try:
        drive(
            scheduler,
            until=lambda: len(publishes) >= BEFORE_KILL,
            deadline=time.monotonic() + PHASE_DEADLINE,
        )
        assert len(publishes) >= BEFORE_KILL, "the beat did not dispatch before the kill"
        assert scheduler.lock is not None
        assert scheduler.lock.fence is not None
        epoch_before = scheduler.lock.fence.epoch

        cluster.wait_replicated(old_owner)
        killed = cluster.kill_primary_of(slot)
        assert killed is old_owner
        killed_at = time.time()
        watch = PromotionWatch(cluster, slot, killed.port)
        watch.start()
        before = len(publishes)
        ticks = drive(
            scheduler,
            until=lambda: len(publishes) >= before + AFTER_KILL,
            deadline=time.monotonic() + PHASE_DEADLINE,
        )
        watch.stop.set()
        watch.join(timeout=10)
        resumed = publishes[before:]
        assert len(resumed) >= AFTER_KILL, (
            f"dispatching did not resume within {PHASE_DEADLINE}s of the kill; "
            f"lock events {recorder.lock_events}\n{cluster.describe()}"
        )
        new_owner = cluster.wait_for_promotion(slot, killed)
        assert scheduler.lock.held

        # The same client, after the failover: MULTI/EXEC pipelines and every script work, and
        # the new primary answered NOSCRIPT once (its replica past never loaded our scripts).
        store = get_runtime(app).store
        store.save(StoredEntry("after", '{"name": "after"}', None, None, time.time() + 3600))
        assert store.load_many(["after", "missing"])[0] is not None
        errors = new_owner.call("INFO", "errorstats")
        errorstats = errors.decode() if isinstance(errors, bytes) else str(errors)

        due_times = [due for due, _ in recorder.dispatches]
        duplicates = len(due_times) - len(set(due_times))
        gaps = [b - a for a, b in itertools.pairwise(publishes)]
        longest = max(gaps)
        late_by = next(pub - due for due, pub in recorder.dispatches if pub >= killed_at)
        result = {
            "server": redbeat_server_kind,
            "interval_s": INTERVAL,
            "longest_gap_s": round(longest, 3),
            "kill_to_cluster_healthy_s": round((watch.promoted_at or math.nan) - killed_at, 3),
            "kill_to_first_dispatch_s": round(resumed[0] - killed_at, 3),
            "first_dispatch_late_by_s": round(late_by, 3),
            "longest_tick_s": round(max(ticks), 3),
            "missed_due_times": max(0, round(longest / INTERVAL) - 1),
            "duplicated_due_times": duplicates,
            "dispatches": len(publishes),
            "lock_kept": scheduler.lock.fence is not None
            and scheduler.lock.fence.epoch == epoch_before,
            "lock_events": recorder.lock_events,
            "noscript_answered_by_new_primary": "errorstat_NOSCRIPT" in errorstats,
        }
        record_result(redbeat_server_kind, result)

        assert duplicates == 0, f"due times dispatched twice: {sorted(due_times)}"
        assert len(recorder.dispatches) == len(publishes)
        assert longest < PHASE_DEADLINE
        assert max(ticks) < 5.0, "a tick blocked the beat during the failover"
        assert result["noscript_answered_by_new_primary"]
    finally:
        scheduler.close()
        # Give the session its six nodes back: the killed one rejoins as a replica. A failure
        # here must not hide the test's own: the next test's fixture tries again, loudly.
        with contextlib.suppress(ClusterError):
            cluster.ensure_healthy()
