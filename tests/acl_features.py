"""RedBeat's features, each run as a user would, for the ACL tests of every Redis backend.

Each run exercises every path of its feature that sends a command (a static removed and one
kept at start-up, a corrupt entry quarantined, a one-off entry finished, a standby, a release;
saves with and without a schedule, loads, reschedules, ranks, deletes...) and returns what it
showed (logs at WARNING and above, exceptions with their causes) and whether everything
worked. The tests run each under exactly the documented rule (it must work, silently), and
under the rule minus each command (it must fail, naming that command).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import attrs
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import ago, exposure, recording_publishes

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_core.runtime import get_runtime
from redbeat_core.schedules import clocked


@dataclass
class Outcome:
    """What a feature run did: whether it did its job (``worked``), and the warnings, errors
    and exceptions it showed (``shown``: nothing, when all is well)."""

    worked: bool = False
    shown: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.shown)

    @property
    def fine(self) -> bool:
        """It worked and had nothing to say."""
        return self.worked and not self.shown

    def fail(self, exc: BaseException) -> None:
        self.shown.append("".join(traceback.format_exception(exc)))


#: What a run is expected to log: the corrupt entry it quarantines, and the takeover from a
#: leader whose process died.
EXPECTED = (
    "beat: entry 'broken' cannot be scheduled",
    "is gone (the server closed its connection)",
)


@contextmanager
def watching(outcome: Outcome) -> Iterator[None]:
    """Record the warnings and errors logged while the block runs into ``outcome``."""
    with exposure() as shown:
        yield
    outcome.shown += [
        line
        for line in shown.text.splitlines()
        if line.startswith(("WARNING ", "ERROR ", "CRITICAL "))
        and not any(expected in line for expected in EXPECTED)
    ]


def quarantine(admin_app: Celery, name: str) -> None:
    """Record ``name`` as quarantined, as an earlier tick would have: saving or deleting it
    then clears the record (the ``HDEL`` path of the write script)."""
    runtime = get_runtime(admin_app)
    config = runtime.config
    client = runtime.backend.client  # type: ignore[attr-defined]
    client.hset(config.quarantine_key, config.key_for(name), "an earlier tick could not run it")


def seed_for_a_beat(admin_app: Celery) -> None:
    """What a beat finds at start-up, written with full rights: a static still configured (its
    stored meta must survive), one no longer configured (deleted at start-up), a corrupt
    entry due now (quarantined), a one-off due now (finished after its run) and a run-now
    request (published once)."""
    store = get_runtime(admin_app).store
    kept = RedBeatSchedulerEntry("kept", "tasks.kept", schedule(3600), app=admin_app)
    kept.last_run_at = ago(60)
    kept.save()
    RedBeatSchedulerEntry("gone", "tasks.gone", schedule(3600), app=admin_app).save()
    store.set_statics(["kept", "gone"])
    quarantine(admin_app, "gone")
    RedBeatSchedulerEntry("once", "tasks.once", clocked(ago(1)), app=admin_app).save()
    Schedule(admin_app).run_now("kept", by="ops")  # read by the claim (HGET)
    broken = RedBeatSchedulerEntry("broken", "tasks.broken", schedule(60), app=admin_app)
    broken.last_run_at = ago(120)
    stored = broken.to_stored()
    store.save(attrs.evolve(stored, definition="{not json"))


def run_beat(make_app: Callable[..., Celery], admin_app: Celery, **conf: Any) -> Outcome:
    """Start a beat (statics sync), lead it through busy ticks, tick a standby, let the
    leader's process "die" (its liveness subscription closes) so the standby takes over, close
    both (the release is published); ``admin_app`` (full rights) checks what they stored."""
    outcome = Outcome()
    beat_schedule = {"kept": {"task": "tasks.kept", "schedule": 3600.0}}
    beat_schedule["new"] = {"task": "tasks.new", "schedule": 3600.0}
    conf.setdefault("redbeat_lock_poll_interval", 0.05)  # a standby's tick waits this long
    app = make_app(beat_schedule=beat_schedule, **conf)
    other = make_app(beat_schedule=beat_schedule, **conf)
    schedulers: list[RedBeatScheduler] = []
    try:
        with watching(outcome), recording_publishes() as published:
            leader = RedBeatScheduler(app=app)
            schedulers.append(leader)
            for _ in range(3):
                leader.tick()
            standby = RedBeatScheduler(app=other)
            schedulers.append(standby)
            standby.tick()
            lock = leader.lock
            assert lock is not None
            store = get_runtime(admin_app).store
            led = lock.held and standby.lock is not None and not standby.lock.held
            watch = getattr(lock, "_watch", None)
            if watch is not None:
                watch.close()  # what the kernel does when the leader's process dies
            standby.tick()
            outcome.worked = (
                led
                and standby.lock is not None
                and standby.lock.held  # at once, long before the leader's lease lapses
                and sorted(published.tasks) == ["tasks.kept", "tasks.once"]
                and "broken" in store.quarantined()
                and store.load("gone") is None
                and "gone" not in store.quarantined()
                and store.load("kept") is not None
                and "once" in {r.name for r in Schedule(admin_app).history()}
            )
    except Exception as exc:  # what a beat shows its operator: the test reads it
        outcome.fail(exc)
        outcome.worked = False
    finally:
        for scheduler in schedulers:
            with watching(outcome):
                scheduler.close()
    return outcome


def run_entries(make_app: Callable[..., Celery], admin_app: Celery, **conf: Any) -> Outcome:
    """The entry API from a process with no beat: save (scheduled, and disabled), load,
    reschedule, rank, delete."""
    outcome = Outcome()
    app = make_app(**conf)
    quarantine(admin_app, "web")  # mended by the save below
    try:
        with watching(outcome):
            entry = RedBeatSchedulerEntry("web", "tasks.web", schedule(60), app=app)
            entry.last_run_at = ago(10)
            entry.save()
            off = RedBeatSchedulerEntry("off", "tasks.off", schedule(60), app=app, enabled=False)
            off.save()
            key = get_runtime(app).config.key_for("web")
            loaded = RedBeatSchedulerEntry.from_key(key, app=app)
            loaded.reschedule()
            rank = loaded.rank
            loaded.delete()
            admin = get_runtime(admin_app).store
            gone = admin.load("web") is None and "web" not in admin.quarantined()
            outcome.worked = loaded.task == "tasks.web" and rank == 0 and gone
    except Exception as exc:
        outcome.fail(exc)
    return outcome


def run_inspection(make_app: Callable[..., Celery], admin_app: Celery, **conf: Any) -> Outcome:
    """Reading the whole schedule and its history, as the Prometheus plugin and operator
    tools do."""
    outcome = Outcome()
    app = make_app(**conf)
    store = get_runtime(app).store
    try:
        with watching(outcome):
            counted = store.count()
            listed = store.scheduled()
            names = store.names()  # type: ignore[attr-defined]
            lock = Schedule(app).lock_status()
            history = Schedule(app).history()
            outcome.worked = (counted, store.quarantined(), store.statics(), names, history) == (
                len(listed),
                {},
                set(),
                [name for name, _ in listed],
                [],
            ) and lock.epoch >= 0
    except Exception as exc:
        outcome.fail(exc)
    return outcome


def run_overlap(make_app: Callable[..., Celery], admin_app: Celery, **conf: Any) -> Outcome:
    """A beat publishing an entry with an overlap policy: its run is reserved (recorded as
    queued) before it is published. A worker's tracker heartbeat is written with full rights."""
    outcome = Outcome()
    admin = get_runtime(admin_app).store
    admin.tracker_alive("worker-1", 60)  # type: ignore[attr-defined]
    report = RedBeatSchedulerEntry(
        "report", "tasks.report", schedule(60), app=admin_app, policy={"overlap": "skip"}
    )
    report.last_run_at = ago(61)
    report.save()
    app = make_app(**conf)
    try:
        with watching(outcome), recording_publishes() as published:
            scheduler = RedBeatScheduler(app=app)
            try:
                scheduler.tick()
            finally:
                scheduler.close()
            client = get_runtime(admin_app).backend.client  # type: ignore[attr-defined]
            queued = client.zrange("redbeat::queued:report", 0, -1)
            outcome.worked = published.tasks == ["tasks.report"] and len(queued) == 1
    except Exception as exc:
        outcome.fail(exc)
    return outcome


def run_tracking(make_app: Callable[..., Celery], admin_app: Celery, **conf: Any) -> Outcome:
    """What a worker records for those runs: its heartbeat, a run starting, its lease renewed,
    the run ending."""
    outcome = Outcome()
    store = get_runtime(make_app(**conf)).store
    client = get_runtime(admin_app).backend.client  # type: ignore[attr-defined]
    client.zadd("redbeat::queued:report", {"t1": 9e9})  # reserved by the beat
    try:
        with watching(outcome):
            store.tracker_alive("worker-1", 60)  # type: ignore[attr-defined]
            store.run_started("report", "t1", 60)  # type: ignore[attr-defined]
            started = client.zscore("redbeat::running:report", "t1") is not None
            store.renew_runs([("report", "t1")], 120)  # type: ignore[attr-defined]
            store.run_finished("report", "t1")  # type: ignore[attr-defined]
            outcome.worked = (
                started
                and not client.exists("redbeat::queued:report")
                and not client.exists("redbeat::running:report")
                and client.zscore("redbeat::trackers", "worker-1") is not None
            )
    except Exception as exc:
        outcome.fail(exc)
    return outcome


def run_calendars(make_app: Callable[..., Celery], admin_app: Celery, **conf: Any) -> Outcome:
    """An operator storing, listing and deleting a blackout calendar."""
    outcome = Outcome()
    api = Schedule(make_app(**conf))
    try:
        with watching(outcome):
            api.set_calendar("freeze", {"cron": "* 2-3 * * *"})
            listed = [c.name for c in api.calendars()]
            api.delete_calendar("freeze")
            outcome.worked = listed == ["freeze"] and Schedule(admin_app).calendars() == []
    except Exception as exc:
        outcome.fail(exc)
    return outcome
