"""The planning budget: one entry that needs too much work cannot stall the tick for everyone.

No server: ``plan_tick`` is run on records built as a store returns them, with a schedule type
registered for the test whose arithmetic never ends, and dateutil rules that never match.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule

from redbeat_core.budget import BudgetExceeded, PlanningBudget
from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.planning import Plan, TickTime, plan_tick
from redbeat_core.runtime import get_runtime
from redbeat_core.schedules import rrule
from redbeat_core.typing import StoredEntry

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
T = NOW.timestamp()


class Endless(schedule):  # type: ignore[misc]
    """A schedule whose arithmetic never finishes (a plugin's bug)."""

    def is_due(self, last_run_at: datetime) -> Any:
        while True:
            pass


class Slow(schedule):  # type: ignore[misc]
    """A schedule that takes 0.15 s of computation, then answers "due"."""

    def is_due(self, last_run_at: datetime) -> Any:
        until = time.monotonic() + 0.15
        while time.monotonic() < until:
            pass
        return super().is_due(last_run_at)


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("budget", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="teststore://nowhere")
    codec = get_runtime(app).codec
    codec.register_type("test.endless", Endless, lambda s: {}, lambda f: Endless(60))
    codec.register_type("test.slow", Slow, lambda s: {}, lambda f: Slow(60))
    yield app
    app.close()


def record(app: Celery, name: str, sched: Any) -> StoredEntry:
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", sched, app=app)
    entry.last_run_at = NOW - timedelta(hours=1)
    stored = entry.to_stored(NOW) if not isinstance(sched, Endless | Slow) else None
    definition = (
        stored.definition
        if stored
        else (
            f'{{"name": "{name}", "task": "tasks.{name}", "args": [], "kwargs": {{}}, '
            f'"options": {{}}, "schedule": {{"__type__": "test.{type(sched).__name__.lower()}"}}, '
            '"enabled": true}'
        )
    )
    return StoredEntry(name, definition, None, None, T - 1)


def plan(app: Celery, *records: StoredEntry, budget: PlanningBudget) -> Plan:
    with budget.planning():
        return plan_tick(
            records,
            app=app,
            codec=get_runtime(app).codec,
            time=TickTime(now=T, schedule_now=NOW),
            entry_class=RedBeatSchedulerEntry,
            budget=budget,
        )


def test_an_entry_that_never_finishes_is_quarantined_and_the_others_plan(app: Celery) -> None:
    started = time.monotonic()
    result = plan(
        app,
        record(app, "before", schedule(60)),
        record(app, "endless", Endless(60)),
        record(app, "after", schedule(60)),
        budget=PlanningBudget(per_entry=0.2),
    )
    assert time.monotonic() - started < 2
    assert [r.name for r in result.runs] == ["before", "after"]
    ((quarantined),) = result.quarantine
    assert quarantined.name == "endless"
    assert "took more than 0.2s (redbeat_entry_time_budget)" in quarantined.reason


def test_a_recurrence_rule_that_never_matches_is_quarantined(app: Celery) -> None:
    """February 30th, every second: dateutil would step through seconds until the year 9999."""
    never = rrule("SECONDLY", dtstart=NOW - timedelta(days=1), bymonth=2, bymonthday=30)
    entry = RedBeatSchedulerEntry("never", "tasks.never", never, app=app)
    entry.last_run_at = NOW - timedelta(hours=1)
    # Built by hand: saving it would ask the rule for its next run, which never comes.
    definition = get_runtime(app).codec.encode_definition(entry.to_definition())
    started = time.monotonic()
    result = plan(
        app,
        StoredEntry("never", definition, None, None, T - 1),
        budget=PlanningBudget(per_entry=0.3),
    )
    assert time.monotonic() - started < 3
    assert [q.name for q in result.quarantine] == ["never"]


def test_planning_stops_when_the_ticks_share_is_used(app: Celery) -> None:
    records = [record(app, f"slow-{i}", Slow(60)) for i in range(8)]
    result = plan(app, *records, budget=PlanningBudget(per_entry=1.0, total=0.4))
    planned = len(result.runs)
    assert 2 <= planned <= 4  # 0.15 s each: the share is used after about three
    assert result.unplanned == 8 - planned
    assert result.quarantine == ()


def test_the_budget_restores_the_alarm_it_found() -> None:
    before = signal.getsignal(signal.SIGVTALRM)
    budget = PlanningBudget(per_entry=0.5)
    with budget.planning():
        assert signal.getsignal(signal.SIGVTALRM) != before
        assert signal.getitimer(signal.ITIMER_VIRTUAL)[0] > 0
    assert signal.getsignal(signal.SIGVTALRM) == before
    assert signal.getitimer(signal.ITIMER_VIRTUAL) == (0.0, 0.0)


def test_someone_elses_alarm_is_left_alone() -> None:
    def theirs(signum: int, frame: Any) -> None: ...

    previous = signal.signal(signal.SIGVTALRM, theirs)
    try:
        with PlanningBudget(per_entry=0.5).planning():
            assert signal.getsignal(signal.SIGVTALRM) is theirs
            assert signal.getitimer(signal.ITIMER_VIRTUAL) == (0.0, 0.0)
    finally:
        signal.signal(signal.SIGVTALRM, previous)


def test_outside_the_main_thread_only_the_total_is_kept(app: Celery) -> None:
    """No signal there: nothing interrupts an entry, but planning still stops between
    entries once the tick's share is used."""
    found: list[Plan] = []
    records = [record(app, f"slow-{i}", Slow(60)) for i in range(6)]
    worker = threading.Thread(
        target=lambda: found.append(
            plan(app, *records, budget=PlanningBudget(per_entry=0.01, total=0.2))
        )
    )
    worker.start()
    worker.join(timeout=10)
    (result,) = found
    assert result.quarantine == ()  # 0.15 s each, over the 0.01 s per entry: not interrupted
    assert 1 <= len(result.runs) <= 3
    assert result.unplanned == 6 - len(result.runs)


def test_check_raises_once_per_entry() -> None:
    now = [0.0]
    budget = PlanningBudget(per_entry=1.0, clock=lambda: now[0])
    budget.start_entry()
    now[0] = 2.0
    with pytest.raises(BudgetExceeded, match="took more than 1s"):
        budget.check()
    budget.check()  # interrupted once: a second alarm in the handler does not raise again


def _spin(cpu_seconds: float) -> None:
    """Busy work for ``cpu_seconds`` of this process's CPU time (what the timer counts)."""
    until = time.process_time() + cpu_seconds
    while time.process_time() < until:
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_that_a_finalizer_swallowed_is_raised_again() -> None:
    """Found by the stored-data fuzz (tests/fuzz/test_stored_fuzz.py): the timer's
    ``BudgetExceeded`` can land while a finalizer runs (there: a garbage-collected redis
    parser's ``__del__`` during planning), where Python prints "Exception ignored" and drops
    it. The entry was then never interrupted again ("interrupted once"), and a schedule that
    never finishes stalled the tick as it did before the budget. It is raised again one
    budget later."""
    budget = PlanningBudget(per_entry=0.05)

    class SlowFinalizer:
        def __del__(self) -> None:
            _spin(0.2)  # the timer fires in here, and its exception is dropped

    def plan_the_entry() -> None:
        SlowFinalizer()  # collected at once: its finalizer runs now
        _spin(5.0)  # the entry's own endless work: interrupted, not finished

    started = time.process_time()
    with budget.planning():
        budget.start_entry()
        with pytest.raises(BudgetExceeded):
            plan_the_entry()
        budget.end_entry()
    assert time.process_time() - started < 1.0
