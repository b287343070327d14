"""A stop that lands between an at-most-once commit and its publishes must not lose runs.

Found by the fencing tests (test_fencing.py): at the end of a scenario the leader is stopped
with SIGTERM, and once in a few runs a run it had committed was never published, without the
warning the scheduler gives when it does lose one. The dispatch kept publishing after a stop
that arrived while it waited for a due time or inside ``apply_async``, but not elsewhere
between the commit and the last publish: in the observers called after the commit
(``redbeat_before_dispatch``, ``redbeat_entry_quarantined``, ``redbeat_runs_skipped``), in
the lease check, or while the "Sending due task" line was logged. There Celery's handler
closed the scheduler (releasing the lock) and its ``SystemExit`` left ``tick()`` with the runs
stored as run and never published.

The stop signals are now held from the commit to the last publish (redbeat_core.stops).
Reproduced deterministically, in process, on a real server: SIGTERM is handled as
``celery beat`` handles it (close the scheduler, raise ``SystemExit``) and is raised at the
chosen point.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery, Task
from celery.schedules import schedule
from celery.signals import before_task_publish

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_core import hookimpl
from redbeat_core.runtime import get_runtime


@pytest.fixture
def broker_app(make_app: Callable[..., Celery], redbeat_url: str) -> Celery:
    """An at-most-once app with a real broker (database 1) and two entries due now."""
    app: Celery = make_app(
        redbeat_delivery="at-most-once", broker_url=redbeat_url.rsplit("/", 1)[0] + "/1"
    )
    for name in ("a", "b"):
        entry = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(30), app=app)
        entry.last_run_at = datetime.now(UTC) - timedelta(seconds=60)
        entry.save()
    return app


def run_count(client: Any, name: str) -> int:
    meta = client.hget(f"redbeat:{name}", "meta")
    return int(RedBeatSchedulerEntry.decode_meta(meta)["total_run_count"])


def stopped_tick(scheduler: RedBeatScheduler) -> list[str]:
    """Run one tick in which the test's hook calls :func:`raise_stop`, handled the way
    celery beat handles SIGTERM; returns the tasks published, and the lock is released by
    the time the stop leaves ``tick()``."""
    published: list[str] = []

    def record(headers: Any = None, **_: Any) -> None:
        published.append(headers["task"])

    def stop(signum: int, frame: Any) -> None:
        scheduler.close()  # celery beat's handler: Service.sync() closes the scheduler
        raise SystemExit()

    previous = signal.signal(signal.SIGTERM, stop)
    before_task_publish.connect(record, weak=False)
    try:
        with pytest.raises(SystemExit):
            scheduler.tick()
        assert scheduler.lock is not None
        assert not scheduler.lock.held
    finally:
        before_task_publish.disconnect(record)
        signal.signal(signal.SIGTERM, previous)
        scheduler.close()
    return published


def raise_stop() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # handled at once, in this frame


def test_a_stop_in_an_observer_after_the_commit_still_publishes_the_committed_runs(
    broker_app: Celery, client: Any
) -> None:
    """The stop arrives in ``redbeat_before_dispatch``: both runs are committed, and the
    design says they are published before the beat stops."""

    class StopHere:
        @hookimpl
        def redbeat_before_dispatch(self) -> None:
            raise_stop()

    get_runtime(broker_app).plugins.register(StopHere(), name="stop-here")
    published = stopped_tick(RedBeatScheduler(app=broker_app))
    assert [run_count(client, name) for name in ("a", "b")] == [1, 1]  # committed
    assert published == ["tasks.a", "tasks.b"]  # was [] (both lost, nothing logged)
    # and the stop wrote the tick's run records on its way out
    assert sorted(r.name for r in Schedule(broker_app).history()) == ["a", "b"]


def test_a_stop_while_a_send_is_logged_still_publishes_that_run(
    broker_app: Celery, client: Any
) -> None:
    """The stop arrives while "Sending due task b" is logged, before b's ``apply_async``."""

    class StopOnSendingB(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Scheduler: Sending due task b "):
                raise_stop()

    handler = StopOnSendingB()
    logger = logging.getLogger("celery.beat")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        published = stopped_tick(RedBeatScheduler(app=broker_app))
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)
    assert [run_count(client, name) for name in ("a", "b")] == [1, 1]  # committed
    assert published == ["tasks.a", "tasks.b"]  # was ["tasks.a"] (b lost, nothing logged)


def test_a_second_stop_is_obeyed_at_once(
    broker_app: Celery, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator who stops twice is not kept waiting: the first stop is held (and says
    so), the second stops the beat before the runs are published, as it warns."""

    class StopTwice:
        @hookimpl
        def redbeat_before_dispatch(self) -> None:
            raise_stop()
            raise_stop()

    get_runtime(broker_app).plugins.register(StopTwice(), name="stop-twice")
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        published = stopped_tick(RedBeatScheduler(app=broker_app))
    assert [run_count(client, name) for name in ("a", "b")] == [1, 1]
    assert published == []
    assert (
        "SIGTERM received; publishing the tick's 2 committed runs before stopping (stop again "
        "to stop at once)" in caplog.text
    )


def test_the_stop_handler_is_given_back_after_the_tick(broker_app: Celery, client: Any) -> None:
    """The hold lasts one stretch: the handler in place before the tick is in place after."""

    def mine(signum: int, frame: Any) -> None:
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGTERM, mine)
    interrupt = signal.getsignal(signal.SIGINT)
    scheduler = RedBeatScheduler(app=broker_app)
    try:
        scheduler.tick()
        assert [run_count(client, name) for name in ("a", "b")] == [1, 1]  # it held them
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is interrupt
    finally:
        signal.signal(signal.SIGTERM, previous)
        scheduler.close()


def test_a_second_stop_inside_a_publish_is_obeyed_at_once(broker_app: Celery, client: Any) -> None:
    """The first stop is held; the second lands inside ``apply_async`` of the first run,
    where the dispatch would keep publishing after a first stop: it is the second, so the
    beat stops there and publishes nothing more."""

    class StopOnce:
        @hookimpl
        def redbeat_before_dispatch(self) -> None:
            raise_stop()

    class StopInside(Task):  # type: ignore[misc]
        def apply_async(self, *args: Any, **kwargs: Any) -> Any:
            raise_stop()
            return super().apply_async(*args, **kwargs)

    def job() -> None: ...

    broker_app.task(name="tasks.a", base=StopInside, shared=False)(job)
    get_runtime(broker_app).plugins.register(StopOnce(), name="stop-once")
    published = stopped_tick(RedBeatScheduler(app=broker_app))
    assert [run_count(client, name) for name in ("a", "b")] == [1, 1]  # committed
    assert published == []  # stopped inside a's publish: b is not published either
