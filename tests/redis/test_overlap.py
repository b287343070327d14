"""The overlap policies on a real server: the store's run tracking (reserve, started,
finished, leases), the beat's decisions in real ticks, and the worker side driven by Celery's
own task signals."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import ago

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_core import running
from redbeat_core.idempotency import task_id_for
from redbeat_core.running import Reservation, Reserved, RunTracker
from redbeat_core.runtime import get_runtime


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.02)  # polling interval; the deadline decides


def tracker(app: Celery) -> RunTracker:
    store = get_runtime(app).store
    assert isinstance(store, RunTracker)
    return store


def counts(store: RunTracker, name: str) -> tuple[int, int]:
    """(queued, running) of ``name``, as a ``skip`` reservation of a probe run counts them
    (a probe that was let through is finished again at once)."""
    (found,) = store.reserve_runs([Reservation(name, "probe", "skip", 60)]) or [None]
    assert found is not None
    if found.allowed:
        store.run_finished(name, "probe")
    return found.queued, found.running


# ------------------------------------------------------------------------- the store


def test_no_reservation_without_a_live_tracker(app: Celery, client: Any) -> None:
    store = tracker(app)
    assert store.reserve_runs([Reservation("e", "t1", "skip", 60)]) is None
    assert not client.exists("redbeat::queued:e")  # nothing written
    store.tracker_alive("w1", 0.3)
    assert store.reserve_runs([Reservation("e", "t1", "skip", 60)]) == [Reserved(True, 0, 0)]
    wait_for(lambda: store.reserve_runs([Reservation("x", "t", "skip", 60)]) is None)


def test_a_run_is_reserved_only_when_none_is_queued_or_running(app: Celery) -> None:
    store = tracker(app)
    store.tracker_alive("w1", 60)
    skip = [Reservation("s", "t1", "skip", 60), Reservation("s", "t2", "skip", 60)]
    assert store.reserve_runs(skip) == [Reserved(True, 0, 0), Reserved(False, 1, 0)]
    store.run_started("s", "t1", 60)
    assert store.reserve_runs([Reservation("s", "t3", "buffer_one", 60)]) == [Reserved(False, 0, 1)]
    store.run_finished("s", "t1")
    assert store.reserve_runs([Reservation("s", "t4", "skip", 60)]) == [Reserved(True, 0, 0)]


def test_leases_bound_a_lost_worker_and_a_lost_message(app: Celery, client: Any) -> None:
    store = tracker(app)
    store.tracker_alive("w1", 60)
    store.run_started("dead-worker", "t1", 0.3)  # its worker never renews nor finishes
    assert counts(store, "dead-worker") == (0, 1)
    wait_for(lambda: counts(store, "dead-worker") == (0, 0))
    assert store.reserve_runs([Reservation("lost", "m1", "skip", 0.3)]) == [Reserved(True, 0, 0)]
    assert counts(store, "lost") == (1, 0)
    wait_for(lambda: counts(store, "lost") == (0, 0))
    store.run_started("renewed", "t2", 0.5)
    store.renew_runs([("renewed", "t2")], 60)
    assert client.zscore("redbeat::running:renewed", "t2") > time.time() + 30
    wait_for(lambda: not client.exists("redbeat::queued:lost"))  # empty sets do not linger


# ------------------------------------------------------------------------- the beat


def overlapping(app: Celery, name: str, mode: str = "skip") -> Any:
    entry = RedBeatSchedulerEntry(
        name, f"tasks.{name}", schedule(60), app=app, policy={"overlap": mode}
    )
    entry.last_run_at = ago(61)
    return entry.save()


def tick(app: Celery) -> None:
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
    finally:
        scheduler.close()


def test_a_run_is_skipped_while_the_previous_one_runs(
    app: Celery, sent: list[dict[str, Any]]
) -> None:
    store = tracker(app)
    store.tracker_alive("w1", 60)
    overlapping(app, "report")
    tick(app)
    (first,) = sent
    assert first["redbeat_entry"] == "report"  # the worker's marks name the entry
    store.run_started("report", first["id"], 60)
    RedBeatSchedulerEntry.from_key("redbeat:report", app=app).reschedule(ago(61))
    tick(app)
    assert len(sent) == 1
    tick(app)  # writes the history the last tick held
    skipped = [r for r in Schedule(app).history("report") if r.outcome == "skipped"]
    assert skipped[0].reason == (
        "overlap: its previous run is not done (1 running, 0 queued; overlap='skip') "
        "(plugin redbeat.overlap)"
    )
    store.run_finished("report", first["id"])
    RedBeatSchedulerEntry.from_key("redbeat:report", app=app).reschedule(ago(61))
    tick(app)
    assert len(sent) == 2


def test_buffer_one_holds_one_run_until_the_previous_one_is_done(
    app: Celery, sent: list[dict[str, Any]], client: Any
) -> None:
    store = tracker(app)
    store.tracker_alive("w1", 60)
    overlapping(app, "report", "buffer_one")
    scheduler = RedBeatScheduler(app=app)  # one beat: it remembers what it recorded
    try:
        scheduler.tick()
        (first,) = sent
        store.run_started("report", first["id"], 60)
        RedBeatSchedulerEntry.from_key("redbeat:report", app=app).reschedule(ago(61))
        for _ in range(3):  # buffered: re-checked a second later, and again
            scheduler.tick()
            assert len(sent) == 1
            score = client.zscore("redbeat::schedule", "redbeat:report")
            assert time.time() < score <= time.time() + 1.5
            client.zadd("redbeat::schedule", {"redbeat:report": time.time() - 0.01})
        store.run_finished("report", first["id"])
        scheduler.tick()
        assert len(sent) == 2  # the buffered run, now that the first is done
    finally:
        scheduler.close()
    history = Schedule(app).history("report")
    postponed = [r for r in history if r.outcome == "postponed"]
    assert len(postponed) == 1  # re-checks are not recorded again
    assert (postponed[0].reason or "").startswith(
        "overlap: buffered until its previous run is done (1 running, 0 queued"
    )


def test_idempotent_ids_are_kept_for_reserved_runs(
    make_app: Callable[..., Celery], sent: list[dict[str, Any]], client: Any
) -> None:
    app = make_app(redbeat_idempotent_task_ids=True)
    tracker(app).tracker_alive("w1", 60)
    entry = overlapping(app, "report", "buffer_one")
    due = entry.last_run_at.timestamp() + 60  # where the run belongs in its schedule
    tick(app)
    (message,) = sent
    assert message["id"] == task_id_for("redbeat:report", due)
    assert client.zscore("redbeat::queued:report", message["id"]) is not None


def test_without_a_recording_worker_the_beat_publishes_and_says_why(
    app: Celery, sent: list[dict[str, Any]], caplog: pytest.LogCaptureFixture, client: Any
) -> None:
    """Published unreserved, as with 'allow', but naming its entry: the worker that runs it
    starts recording runs."""
    overlapping(app, "report")
    with caplog.at_level(logging.INFO, logger="celery.beat"):
        tick(app)
    (message,) = sent
    assert message["redbeat_entry"] == "report"
    assert not client.exists("redbeat::queued:report")
    assert "no worker records runs yet" in caplog.text


# ------------------------------------------------------------------------- the worker side


def test_a_worker_records_start_and_end_through_celerys_signals(
    make_app: Callable[..., Celery], client: Any
) -> None:
    """A real Celery task run in this process (``apply``, which sends the same prerun and
    postrun signals a worker does) with the beat's header: marked running while it runs."""
    app = make_app(redbeat_run_lease=30)
    running.connect_worker_signals()
    seen: list[Any] = []

    @app.task(name=f"tasks.observed.{app.main}", bind=True)  # one name per app
    def observed(self: Any) -> None:
        seen.append(client.zscore("redbeat::running:report", self.request.id))

    try:
        result = observed.apply(task_id="run-1", headers={"redbeat_entry": "report"})
        assert result.successful(), result.traceback
        assert seen[0] is not None
        assert seen[0] > time.time() + 20  # leased for redbeat_run_lease
        assert client.zscore("redbeat::running:report", "run-1") is None  # done: not running
        assert client.zcard("redbeat::trackers") == 1  # it says it records runs from now on
        plain = observed.apply(task_id="run-2")  # no header: nothing recorded
        assert plain.successful()
        assert seen[1] is None
    finally:
        running.stop_recording()  # this test process is no worker: no heartbeat after it
