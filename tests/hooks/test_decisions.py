"""Hooks that decide: ``redbeat_decide_runs`` skips or postpones due runs, on a real server.

A skipped run is not published, is committed as skipped (the schedule moves on, the run count
does not), is logged once at INFO with the plugin and the reason, and reaches
``redbeat_runs_skipped`` once stored. Every call goes through pluggy, so wrappers, ordering and
hook-call monitoring work; a decider that raises is logged and its runs go ahead. Observers of
an outcome (quarantined, skipped) hear of it only after the commit that stored it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import ago, recording_publishes, wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core import DueRuns, Skipped, hookimpl
from redbeat_core.plugins import BLOCK_ENV, DISABLE_AUTOLOAD_ENV
from redbeat_core.runtime import get_runtime

LOCK_KEY = "redbeat::lock"
SCHEDULE_KEY = "redbeat::schedule"
FAST_LOCK = {"redbeat_lock_timeout": 2.0, "redbeat_lock_poll_interval": 0.1}


def due_entry(app: Celery, name: str, every: float = 30) -> RedBeatSchedulerEntry:
    item = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(every), app=app)
    item.last_run_at = ago(every * 2)
    return item.save()


def meta_of(client: Any, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(client.hget(f"redbeat:{name}", "meta"))
    return meta


class Blackout:
    """Skips every run of a ``maint-*`` entry: the plugin the issue describes."""

    @hookimpl
    def redbeat_decide_runs(self, runs: DueRuns) -> None:
        for run in runs:
            if run.name.startswith("maint-"):
                runs.skip(run, "maintenance blackout")


class SkipRecorder:
    def __init__(self) -> None:
        self.skipped: list[Skipped] = []

    @hookimpl
    def redbeat_runs_skipped(self, skipped: Sequence[Skipped]) -> None:
        self.skipped.extend(skipped)


@pytest.fixture
def beat_app(make_app: Callable[..., Celery], monkeypatch: pytest.MonkeyPatch) -> Celery:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    return make_app(**FAST_LOCK)


@pytest.fixture
def register() -> Iterator[Callable[[Celery, object, str], None]]:
    registered: list[tuple[Any, str]] = []

    def add(app: Celery, plugin: object, name: str) -> None:
        plugins = get_runtime(app).plugins
        assert plugins.register(plugin, name=name) == name
        registered.append((plugins, name))

    try:
        yield add
    finally:
        for plugins, name in reversed(registered):
            plugins.unregister(name)


@pytest.fixture
def scheduler(beat_app: Celery) -> Iterator[RedBeatScheduler]:
    beat = RedBeatScheduler(app=beat_app)
    try:
        yield beat
    finally:
        beat.close()


# ----------------------------------------------------------------------------- skip


@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once"])
def test_a_skipped_run_is_not_published_and_is_stored_as_skipped(
    make_app: Callable[..., Celery],
    monkeypatch: pytest.MonkeyPatch,
    register: Callable[[Celery, object, str], None],
    client: Any,
    caplog: pytest.LogCaptureFixture,
    delivery: str,
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    app = make_app(**FAST_LOCK, redbeat_delivery=delivery)
    recorder = SkipRecorder()
    register(app, Blackout(), "blackout")
    register(app, recorder, "skip-recorder")
    due_entry(app, "maint-vacuum")
    due_entry(app, "report")
    before = meta_of(client, "maint-vacuum")
    scheduler = RedBeatScheduler(app=app)
    try:
        with recording_publishes() as published, caplog.at_level(logging.INFO, "celery.beat"):
            scheduler.tick()
            scheduler.tick()  # the skipped run is not due again: the schedule moved on
    finally:
        scheduler.close()

    assert published.tasks == ["tasks.report"]
    after = meta_of(client, "maint-vacuum")
    assert after["total_run_count"] == before["total_run_count"] == 0  # not counted
    assert after["last_run_at"] != before["last_run_at"]  # but the due time passed
    assert client.zscore(SCHEDULE_KEY, "redbeat:maint-vacuum") > time.time() + 25
    assert meta_of(client, "report")["total_run_count"] == 1
    lines = [r for r in caplog.records if "skipped the run of 'maint-vacuum'" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert "maintenance blackout (plugin blackout)" in lines[0].getMessage()
    (skipped,) = recorder.skipped
    assert skipped.entry.name == "maint-vacuum"
    assert (skipped.decision.action, skipped.decision.plugin) == ("skip", "blackout")
    assert skipped.decision.reason == "maintenance blackout"


def test_a_postponed_run_is_published_at_its_new_time_and_counted_once(
    beat_app: Celery,
    register: Callable[[Celery, object, str], None],
    client: Any,
    scheduler: RedBeatScheduler,
) -> None:
    until = time.time() + 0.6

    class Later:
        @hookimpl
        def redbeat_decide_runs(self, runs: DueRuns) -> None:
            for run in runs:
                if run.due_at < until:  # once: the postponed run is due at `until`
                    runs.postpone(run, until, "wait for the nightly import")

    register(beat_app, Later(), "later")
    due_entry(beat_app, "import-report")
    with recording_publishes() as published:
        scheduler.tick()
        assert published.tasks == []
        assert client.zscore(SCHEDULE_KEY, "redbeat:import-report") == pytest.approx(until, 1e-3)
        assert meta_of(client, "import-report")["total_run_count"] == 0
        wait_for(
            lambda: bool(scheduler.tick() is not None and published.tasks),
            timeout=10,
            what="the postponed run is published",
        )
    assert published.tasks == ["tasks.import-report"]
    assert time.time() >= until
    assert meta_of(client, "import-report")["total_run_count"] == 1


def test_the_first_decision_stands_and_tryfirst_orders_deciders(
    beat_app: Celery,
    register: Callable[[Celery, object, str], None],
    client: Any,
    scheduler: RedBeatScheduler,
) -> None:
    seen: list[str] = []

    class First:
        @hookimpl(tryfirst=True)
        def redbeat_decide_runs(self, runs: DueRuns) -> None:
            for run in runs:
                assert runs.postpone(run, runs.now + 60, "first")

    class Second:
        @hookimpl
        def redbeat_decide_runs(self, runs: DueRuns) -> None:
            for run in runs:
                decided = runs.decision(run)
                seen.append(decided.reason if decided else "-")
                assert not runs.skip(run, "second")  # already decided: ignored

    register(beat_app, First(), "first")
    register(beat_app, Second(), "second")  # registered last, so pluggy would call it first
    due_entry(beat_app, "x")
    with recording_publishes() as published:
        scheduler.tick()
    assert seen == ["first"]
    assert published.tasks == []
    assert client.zscore(SCHEDULE_KEY, "redbeat:x") > time.time() + 50


def test_a_raising_decider_is_logged_once_and_its_runs_go_ahead(
    beat_app: Celery,
    register: Callable[[Celery, object, str], None],
    scheduler: RedBeatScheduler,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        @hookimpl
        def redbeat_decide_runs(self, runs: DueRuns) -> None:
            raise RuntimeError("decider bug")

    register(beat_app, Broken(), "broken-decider")
    due_entry(beat_app, "a")
    with recording_publishes() as published, caplog.at_level(logging.ERROR, "celery.beat"):
        scheduler.tick()
        due_entry(beat_app, "b")
        scheduler.tick()
    # Failing open: a beat that stopped scheduling would be worse than one that did not skip.
    assert published.tasks == ["tasks.a", "tasks.b"]
    errors = [r for r in caplog.records if "broken-decider" in r.getMessage()]
    assert len(errors) == 1
    assert "redbeat_decide_runs" in errors[0].getMessage()


def test_no_decider_no_cost(
    beat_app: Celery, scheduler: RedBeatScheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only RedBeat's policies plugin implements the hook and no due run has a policy: the
    tick builds no DueRuns, calls nobody and publishes as before."""
    plugins = get_runtime(beat_app).plugins
    assert plugins.decide_runs.implemented_only_by("redbeat.policies", "redbeat.overlap")

    def no_runs(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("DueRuns built with no decider to ask")

    monkeypatch.setattr("redbeat_core.scheduler.DueRuns", no_runs)
    due_entry(beat_app, "a")
    with recording_publishes() as published:
        scheduler.tick()
    assert published.tasks == ["tasks.a"]


# ----------------------------------------------------------------------------- through pluggy


def test_every_hook_call_goes_through_pluggy(
    beat_app: Celery,
    register: Callable[[Celery, object, str], None],
    scheduler: RedBeatScheduler,
) -> None:
    """A ``wrapper=True`` implementation wraps the observers and the decisions, ``tryfirst``
    and ``trylast`` order them, and pluggy's hook-call monitoring sees every call."""
    order: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def redbeat_after_dispatch(self) -> Generator[None, None, None]:
            order.append("wrapper: before")
            yield
            order.append("wrapper: after")

        @hookimpl(wrapper=True)
        def redbeat_decide_runs(self, runs: DueRuns) -> Generator[None, None, None]:
            yield
            decided = sorted(r.name for r in runs if runs.decision(r) is not None)
            order.append(f"decided: {decided}")

    class Early:
        @hookimpl(tryfirst=True)
        def redbeat_after_dispatch(self) -> None:
            order.append("tryfirst")

    class Late:
        @hookimpl(trylast=True)
        def redbeat_after_dispatch(self) -> None:
            order.append("trylast")

    register(beat_app, Late(), "late")
    register(beat_app, Wrapper(), "wrapper")
    register(beat_app, Early(), "early")
    register(beat_app, Blackout(), "blackout")
    monitored: list[str] = []
    undo = get_runtime(beat_app).plugins.pm.add_hookcall_monitoring(
        before=lambda name, impls, kwargs: monitored.append(name),
        after=lambda outcome, name, impls, kwargs: None,
    )
    try:
        due_entry(beat_app, "maint-a")
        due_entry(beat_app, "b")
        scheduler.tick()
    finally:
        undo()
    assert order == [
        "decided: ['maint-a']",
        "wrapper: before",
        "tryfirst",
        "trylast",
        "wrapper: after",
    ]
    for hook in ("redbeat_entry_saved", "redbeat_decide_runs", "redbeat_after_dispatch"):
        assert hook in monitored
    assert "redbeat_tick" not in monitored  # nobody implements it: not even called


def test_a_raising_observer_does_not_stop_a_wrapper_or_the_others(
    beat_app: Celery,
    register: Callable[[Celery, object, str], None],
    scheduler: RedBeatScheduler,
) -> None:
    ran: list[str] = []

    class Raising:
        @hookimpl(tryfirst=True)
        def redbeat_tick(self) -> None:
            raise RuntimeError("observer bug")

    class Counting:
        @hookimpl
        def redbeat_tick(self) -> None:
            ran.append("counting")

        @hookimpl(wrapper=True)
        def redbeat_before_dispatch(self) -> Generator[None, None, None]:
            ran.append("wrapped")
            return (yield)

    register(beat_app, Counting(), "counting")
    register(beat_app, Raising(), "raising")
    due_entry(beat_app, "a")
    scheduler.tick()
    scheduler.tick()
    assert ran == ["wrapped", "counting", "counting"]


# ----------------------------------------------------------------------------- after the commit


def test_a_quarantine_is_reported_only_once_its_commit_stored_it(
    beat_app: Celery,
    register: Callable[[Celery, object, str], None],
    client: Any,
    scheduler: RedBeatScheduler,
) -> None:
    """The lease is lost between the claim and the commit (another beat took the lock while
    this one planned): nothing is stored, so nothing is reported as quarantined, and with
    at-most-once nothing is published. The next leader reports it once it stores it."""
    quarantined: list[str] = []

    class Steal:
        @hookimpl
        def redbeat_decide_runs(self) -> None:
            client.set(LOCK_KEY, "another-beat", px=60_000)

    class Watch:
        @hookimpl
        def redbeat_entry_quarantined(self, name: str) -> None:
            quarantined.append(name)

    register(beat_app, Steal(), "steal")
    register(beat_app, Watch(), "watch")
    due_entry(beat_app, "good")
    client.hset("redbeat:broken", mapping={"definition": "{not json"})
    client.zadd(SCHEDULE_KEY, {"redbeat:broken": time.time() - 100})
    with recording_publishes() as published:
        scheduler.tick()
    assert quarantined == []
    assert client.hgetall("redbeat::quarantine") == {}
    assert published.tasks == []
    assert not scheduler.lock.held  # type: ignore[union-attr]

    get_runtime(beat_app).plugins.unregister("steal")
    client.delete(LOCK_KEY)
    with recording_publishes() as published:
        scheduler.tick()
    assert quarantined == ["broken"]
    assert set(client.hgetall("redbeat::quarantine")) == {"redbeat:broken"}
    assert published.tasks == ["tasks.good"]
