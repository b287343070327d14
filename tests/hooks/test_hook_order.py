"""Every hook is called as the hook reference says: when, with which arguments, in which order.

A recorder plugin implements every hookspec in :mod:`redbeat_core.hookspecs` (a test compares
it with the specs, so a new hook cannot be forgotten here) and writes down each call with its
arguments. It is registered into the app's own plugin manager in a fixture and unregistered in
``finally``, so nothing leaks into other tests. A real ``RedBeatScheduler`` then runs against a
real server through start-up, idle ticks, due ticks, entry save/delete, lock acquired and lost,
and shutdown; ticks are driven by calling ``tick()`` and publishes go to ``memory://``.

Third-party entry points are not loaded here (``REDBEAT_DISABLE_PLUGIN_AUTOLOAD=1``): only
RedBeat's own plugins and the ones a test registers take part.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import attrs
import pluggy
import pytest
from celery import Celery, Task
from celery.beat import SchedulingError
from celery.result import AsyncResult
from celery.schedules import schedule
from celery.signals import before_task_publish
from redbeat_test_support import ago, wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core import hookimpl, hookspecs
from redbeat_core.codec import Codec
from redbeat_core.config import RedBeatConfig
from redbeat_core.locks import NullLock
from redbeat_core.plugins import BLOCK_ENV, DISABLE_AUTOLOAD_ENV
from redbeat_core.registry import BackendRegistry
from redbeat_core.runs import Dispatched, DueRuns, Skipped
from redbeat_core.runtime import get_runtime
from redbeat_core.settings import SettingRegistry
from redbeat_core.typing import Backend, Fence, Lock

LOCK_KEY = "redbeat::lock"
#: A short lease and a fast standby poll: takeovers and step-downs take milliseconds.
FAST_LOCK = {"redbeat_lock_timeout": 2.0, "redbeat_lock_poll_interval": 0.1}
RECORDER = "hook-recorder"
REGISTRATION_HOOKS = (
    "redbeat_register_backends",
    "redbeat_register_settings",
    "redbeat_configure_converter",
)


def due_entry(app: Celery, name: str, every: float = 30, late: float = 0) -> RedBeatSchedulerEntry:
    """An interval entry that is due now (``late`` seconds more than the others)."""
    item = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(every), app=app)
    item.last_run_at = ago(every * 2 + late)
    return item.save()


# ----------------------------------------------------------------------------- the recorder


@attrs.frozen
class Call:
    hook: str
    args: dict[str, Any]


class Recorder:
    """Records every hook call with its arguments. Implements every hookspec; the strategy
    hook answers None, so RedBeat's default still decides."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def _record(self, hook: str, **args: Any) -> None:
        self.calls.append(Call(hook, args))

    # -- queries

    def hooks(self) -> list[str]:
        """Hook names in call order, registration hooks left out."""
        return [c.hook for c in self.calls if c.hook not in REGISTRATION_HOOKS]

    def of(self, hook: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.hook == hook]

    def one(self, hook: str) -> dict[str, Any]:
        found = self.of(hook)
        assert len(found) == 1, f"{hook}: {len(found)} calls"
        return found[0]

    def last(self, hook: str) -> dict[str, Any]:
        found = self.of(hook)
        assert found, f"{hook} was never called"
        return found[-1]

    def clear(self) -> None:
        self.calls.clear()

    # -- registration

    @hookimpl
    def redbeat_register_backends(self, registry: BackendRegistry) -> None:
        self._record("redbeat_register_backends", registry=registry)

    @hookimpl
    def redbeat_register_settings(self, registry: SettingRegistry) -> None:
        self._record("redbeat_register_settings", registry=registry)

    @hookimpl
    def redbeat_configure_converter(self, codec: Codec) -> None:
        self._record("redbeat_configure_converter", codec=codec)

    # -- operations

    @hookimpl
    def redbeat_doctor(self, app: Celery, backend: Backend) -> list[Any]:
        self._record("redbeat_doctor", app=app, backend=backend)
        return []

    # -- strategies

    @hookimpl
    def redbeat_make_lock(self, config: RedBeatConfig, backend: Backend) -> Lock | None:
        self._record("redbeat_make_lock", config=config, backend=backend)
        return None

    # -- decisions (records the runs, decides nothing)

    @hookimpl
    def redbeat_decide_runs(self, scheduler: Any, runs: DueRuns) -> None:
        self._record("redbeat_decide_runs", scheduler=scheduler, runs=list(runs))

    # -- observers

    @hookimpl
    def redbeat_runs_skipped(self, scheduler: Any, skipped: Sequence[Skipped]) -> None:
        self._record("redbeat_runs_skipped", scheduler=scheduler, skipped=list(skipped))

    @hookimpl
    def redbeat_scheduler_started(self, scheduler: Any) -> None:
        self._record("redbeat_scheduler_started", scheduler=scheduler)

    @hookimpl
    def redbeat_scheduler_stopped(self, scheduler: Any) -> None:
        self._record("redbeat_scheduler_stopped", scheduler=scheduler)

    @hookimpl
    def redbeat_tick(self, scheduler: Any, leader: bool, due: int, next_wake: float) -> None:
        self._record(
            "redbeat_tick", scheduler=scheduler, leader=leader, due=due, next_wake=next_wake
        )

    @hookimpl
    def redbeat_before_dispatch(self, scheduler: Any, entries: Sequence[Any]) -> None:
        self._record("redbeat_before_dispatch", scheduler=scheduler, entries=list(entries))

    @hookimpl
    def redbeat_after_dispatch(self, scheduler: Any, dispatched: Sequence[Any]) -> None:
        self._record("redbeat_after_dispatch", scheduler=scheduler, dispatched=list(dispatched))

    @hookimpl
    def redbeat_dispatch_failed(self, scheduler: Any, entry: Any, exc: BaseException) -> None:
        self._record("redbeat_dispatch_failed", scheduler=scheduler, entry=entry, exc=exc)

    @hookimpl
    def redbeat_entry_quarantined(self, scheduler: Any, name: str, reason: str) -> None:
        self._record("redbeat_entry_quarantined", scheduler=scheduler, name=name, reason=reason)

    @hookimpl
    def redbeat_entry_saved(self, app: Any, entry: Any) -> None:
        self._record("redbeat_entry_saved", app=app, entry=entry)

    @hookimpl
    def redbeat_entry_deleted(self, app: Any, name: str) -> None:
        self._record("redbeat_entry_deleted", app=app, name=name)

    @hookimpl
    def redbeat_lock_acquired(self, scheduler: Any, fence: Fence | None) -> None:
        self._record("redbeat_lock_acquired", scheduler=scheduler, fence=fence)

    @hookimpl
    def redbeat_lock_lost(self, scheduler: Any, reason: str) -> None:
        self._record("redbeat_lock_lost", scheduler=scheduler, reason=reason)


class Exploding:
    """Raises in every observer hook."""

    def _boom(self, hook: str) -> None:
        raise RuntimeError(f"exploding plugin: {hook}")

    @hookimpl
    def redbeat_scheduler_started(self) -> None:
        self._boom("redbeat_scheduler_started")

    @hookimpl
    def redbeat_scheduler_stopped(self) -> None:
        self._boom("redbeat_scheduler_stopped")

    @hookimpl
    def redbeat_tick(self) -> None:
        self._boom("redbeat_tick")

    @hookimpl
    def redbeat_before_dispatch(self) -> None:
        self._boom("redbeat_before_dispatch")

    @hookimpl
    def redbeat_after_dispatch(self) -> None:
        self._boom("redbeat_after_dispatch")

    @hookimpl
    def redbeat_entry_saved(self) -> None:
        self._boom("redbeat_entry_saved")

    @hookimpl
    def redbeat_lock_acquired(self) -> None:
        self._boom("redbeat_lock_acquired")

    @hookimpl
    def redbeat_lock_lost(self) -> None:
        self._boom("redbeat_lock_lost")

    @hookimpl
    def redbeat_decide_runs(self) -> None:
        self._boom("redbeat_decide_runs")

    @hookimpl
    def redbeat_runs_skipped(self) -> None:
        self._boom("redbeat_runs_skipped")


def hookspecs_by_name() -> dict[str, pluggy.HookCaller]:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return {
        name: caller
        for name, caller in vars(pm.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.has_spec()
    }


def hookimpl_names(plugin: object) -> set[str]:
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    return {name for name in dir(plugin) if hasattr(getattr(plugin, name), marker)}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def beat_app(make_app: Callable[..., Celery], monkeypatch: pytest.MonkeyPatch) -> Celery:
    """An app with a short lease; only RedBeat's own plugins are loaded into it."""
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    return make_app(**FAST_LOCK)


@pytest.fixture
def register() -> Iterator[Callable[[Celery, object, str], None]]:
    """Register a plugin into an app's plugin manager; every one is unregistered afterwards."""
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
def recorder(beat_app: Celery, register: Callable[[Celery, object, str], None]) -> Recorder:
    recording = Recorder()
    register(beat_app, recording, RECORDER)
    return recording


@pytest.fixture
def published() -> Iterator[list[str]]:
    names: list[str] = []

    def on_publish(headers: Any = None, **_: Any) -> None:
        names.append(headers["task"])

    before_task_publish.connect(on_publish, weak=False)
    try:
        yield names
    finally:
        before_task_publish.disconnect(on_publish)


def scheduler_for(app: Celery) -> RedBeatScheduler:
    runtime = get_runtime(app)
    scheduler = RedBeatScheduler(app=app)
    # The scheduler must run on the runtime the recorder was registered into.
    assert get_runtime(app) is runtime
    return scheduler


# ----------------------------------------------------------------------------- the recorder itself


def test_the_recorder_implements_every_hookspec() -> None:
    specs = hookspecs_by_name()
    assert hookimpl_names(Recorder) == set(specs)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(Recorder(), name=RECORDER)
    for name, caller in specs.items():
        (impl,) = pm.hook.__dict__[name].get_hookimpls()
        # Every argument of the spec is taken, so every argument is recorded.
        assert impl.argnames == caller.spec.argnames, name  # type: ignore[union-attr]
    assert hookimpl_names(Exploding) == set(specs) - {
        *REGISTRATION_HOOKS,
        "redbeat_make_lock",  # strategies are not shielded: a broken one must stop start-up
        "redbeat_dispatch_failed",
        "redbeat_entry_quarantined",
        "redbeat_entry_deleted",
        "redbeat_doctor",  # run by `redbeat doctor`, never by a beat (tests/redis/test_doctor.py)
    }


def test_a_late_plugin_still_gets_the_registration_hooks(
    beat_app: Celery, recorder: Recorder
) -> None:
    """Registration hooks are historic: the recorder was registered after the app's plugin
    manager was built, and got both calls, with the app's own registry and codec."""
    runtime = get_runtime(beat_app)
    assert Counter(c.hook for c in recorder.calls) == Counter(REGISTRATION_HOOKS)
    assert recorder.one("redbeat_register_backends")["registry"] is runtime.registry
    assert "redis" in runtime.registry.schemes
    assert recorder.one("redbeat_configure_converter")["codec"] is runtime.codec
    assert recorder.hooks() == []  # nothing else happened yet


# ----------------------------------------------------------------------------- a beat's life


def test_a_beats_life_in_hooks(
    beat_app: Celery, recorder: Recorder, client: Any, published: list[str]
) -> None:
    app, runtime = beat_app, get_runtime(beat_app)

    saved = due_entry(app, "a")
    assert recorder.hooks() == ["redbeat_entry_saved"]
    assert recorder.one("redbeat_entry_saved") == {"app": app, "entry": saved}

    scheduler = scheduler_for(app)
    assert recorder.hooks() == ["redbeat_entry_saved"]  # start-up hooks come with the first tick
    try:
        # -------- the first tick: start-up, the lock, a due entry
        recorder.clear()
        due_at = client.zscore("redbeat::schedule", "redbeat:a")
        before = time.time()
        interval = scheduler.tick()
        after = time.time()
        assert published == ["tasks.a"]
        assert recorder.hooks() == [
            "redbeat_scheduler_started",
            "redbeat_make_lock",
            "redbeat_lock_acquired",
            "redbeat_decide_runs",
            "redbeat_before_dispatch",
            "redbeat_after_dispatch",
            "redbeat_tick",
        ]
        assert recorder.one("redbeat_scheduler_started") == {"scheduler": scheduler}
        made = recorder.one("redbeat_make_lock")
        assert made["config"] is runtime.config
        assert made["backend"] is runtime.backend
        acquired = recorder.one("redbeat_lock_acquired")
        assert acquired["scheduler"] is scheduler
        fence = acquired["fence"]
        assert scheduler.lock is not None
        assert fence == scheduler.lock.fence
        assert (fence.key, fence.epoch, fence.ttl) == (LOCK_KEY, 1, 2.0)
        assert client.get(LOCK_KEY) == fence.token

        (entry,) = recorder.one("redbeat_before_dispatch")["entries"]
        assert recorder.one("redbeat_before_dispatch")["scheduler"] is scheduler
        assert (entry.name, entry.task) == ("a", "tasks.a")
        (record,) = recorder.one("redbeat_after_dispatch")["dispatched"]
        assert recorder.one("redbeat_after_dispatch")["scheduler"] is scheduler
        assert isinstance(record, Dispatched)
        assert record.entry is entry  # the same objects before and after
        assert record.due_at == due_at
        assert before <= record.published_at <= after
        assert isinstance(record.result, AsyncResult)
        assert record.result.id
        assert recorder.one("redbeat_tick") == {
            "scheduler": scheduler,
            "leader": True,
            "due": 1,
            "next_wake": interval,
        }

        # -------- an idle tick: only the tick report
        recorder.clear()
        interval = scheduler.tick()
        assert recorder.hooks() == ["redbeat_tick"]
        assert recorder.one("redbeat_tick") == {
            "scheduler": scheduler,
            "leader": True,
            "due": 0,
            "next_wake": interval,
        }
        assert published == ["tasks.a"]

        # -------- entries saved and deleted in this process
        recorder.clear()
        stored = RedBeatSchedulerEntry.from_key("redbeat:a", app=app)
        stored.delete()
        assert recorder.hooks() == ["redbeat_entry_deleted"]
        assert recorder.one("redbeat_entry_deleted") == {"app": app, "name": "a"}

        # -------- another beat takes the lock: lost, then a standby
        recorder.clear()
        client.set(LOCK_KEY, "another-beat", px=60_000)
        due_entry(app, "b")
        scheduler.tick()
        assert recorder.hooks() == ["redbeat_entry_saved", "redbeat_lock_lost", "redbeat_tick"]
        assert recorder.one("redbeat_lock_lost") == {"scheduler": scheduler, "reason": "expired"}
        assert recorder.one("redbeat_tick")["leader"] is False
        recorder.clear()
        interval = scheduler.tick()
        assert recorder.hooks() == ["redbeat_tick"]
        assert recorder.one("redbeat_tick") == {
            "scheduler": scheduler,
            "leader": False,
            "due": 0,
            "next_wake": interval,
        }
        assert interval == 0.0  # it waited the poll interval for a release, then tries again
        assert published == ["tasks.a"]  # the standby dispatched nothing

        # -------- the other beat goes: leader again, with the next fencing epoch
        recorder.clear()
        client.delete(LOCK_KEY)
        scheduler.tick()
        assert recorder.hooks() == [
            "redbeat_lock_acquired",
            "redbeat_decide_runs",
            "redbeat_before_dispatch",
            "redbeat_after_dispatch",
            "redbeat_tick",
        ]
        assert recorder.one("redbeat_lock_acquired")["fence"].epoch == 2
        assert published == ["tasks.a", "tasks.b"]

        # -------- shutdown: stopped first, then the lock is released
        recorder.clear()
    finally:
        scheduler.close()
        scheduler.close()  # celery beat closes twice on SIGTERM: its handler, then its loop
    assert recorder.hooks() == ["redbeat_scheduler_stopped", "redbeat_lock_lost"]
    assert recorder.one("redbeat_scheduler_stopped") == {"scheduler": scheduler}
    assert recorder.one("redbeat_lock_lost") == {"scheduler": scheduler, "reason": "released"}
    assert client.exists(LOCK_KEY) == 0


def test_a_second_beat_takes_over_when_the_first_closes(
    make_app: Callable[..., Celery],
    monkeypatch: pytest.MonkeyPatch,
    register: Callable[[Celery, object, str], None],
    published: list[str],
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    apps = [make_app(**FAST_LOCK), make_app(**FAST_LOCK)]  # two apps: two beat processes
    recorders = [Recorder(), Recorder()]
    for app, recording in zip(apps, recorders, strict=True):
        register(app, recording, RECORDER)
    first, second = (scheduler_for(app) for app in apps)
    try:
        first.tick()
        interval = second.tick()
        assert recorders[1].hooks() == [
            "redbeat_scheduler_started",
            "redbeat_make_lock",
            "redbeat_tick",
        ]
        assert recorders[1].one("redbeat_tick") == {
            "scheduler": second,
            "leader": False,
            "due": 0,
            "next_wake": interval,
        }
        epoch = recorders[0].one("redbeat_lock_acquired")["fence"].epoch

        first.close()
        assert recorders[0].hooks()[-2:] == ["redbeat_scheduler_stopped", "redbeat_lock_lost"]
        assert recorders[0].last("redbeat_lock_lost") == {"scheduler": first, "reason": "released"}

        recorders[1].clear()
        due_entry(apps[1], "after-takeover")
        second.tick()
        assert recorders[1].hooks() == [
            "redbeat_entry_saved",
            "redbeat_lock_acquired",
            "redbeat_decide_runs",
            "redbeat_before_dispatch",
            "redbeat_after_dispatch",
            "redbeat_tick",
        ]
        fence = recorders[1].one("redbeat_lock_acquired")["fence"]
        assert fence.epoch == epoch + 1
        assert fence.token != recorders[0].one("redbeat_lock_acquired")["fence"].token
        assert recorders[1].one("redbeat_tick")["leader"] is True
        assert published == ["tasks.after-takeover"]
    finally:
        first.close()
        second.close()


def test_a_beat_that_cannot_reach_its_store_steps_down(
    make_app: Callable[..., Celery],
    monkeypatch: pytest.MonkeyPatch,
    register: Callable[[Celery, object, str], None],
    redbeat_server_factory: Callable[..., Any],
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    server = redbeat_server_factory()  # a private server: this test stops it
    app = make_app(redbeat_redis_url=server.url, redbeat_lock_timeout=0.5)
    recording = Recorder()
    register(app, recording, RECORDER)
    scheduler = scheduler_for(app)
    try:
        scheduler.tick()
        recording.clear()
        server.stop()
        # The leader keeps ticking and steps down once its lease must have lapsed (0.5 s).
        wait_for(
            lambda: scheduler.tick() is not None and bool(recording.of("redbeat_lock_lost")),
            10.0,
            "the beat stepped down",
        )
        scheduler.tick()  # still down: a standby now, nothing more to lose
        assert recording.one("redbeat_lock_lost") == {
            "scheduler": scheduler,
            "reason": "unreachable",
        }
        assert "redbeat_lock_acquired" not in recording.hooks()
    finally:
        recording.clear()
        scheduler.close()
    # Not holding the lock any more: stopped, and nothing to release.
    assert recording.hooks() == ["redbeat_scheduler_stopped"]


def test_a_beat_without_a_lock_reports_a_fence_of_none(
    make_app: Callable[..., Celery],
    monkeypatch: pytest.MonkeyPatch,
    register: Callable[[Celery, object, str], None],
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    app = make_app(redbeat_lock_key=None)
    recording = Recorder()
    register(app, recording, RECORDER)
    scheduler = scheduler_for(app)
    try:
        scheduler.tick()
        assert isinstance(scheduler.lock, NullLock)
        assert recording.one("redbeat_lock_acquired") == {"scheduler": scheduler, "fence": None}
    finally:
        scheduler.close()
    assert recording.hooks()[-2:] == ["redbeat_scheduler_stopped", "redbeat_lock_lost"]


def test_every_tick_is_reported(beat_app: Celery, recorder: Recorder, client: Any) -> None:
    scheduler = scheduler_for(beat_app)
    try:
        ticks = 0
        for take_lock in (False, True, False):
            if take_lock:
                client.set(LOCK_KEY, "another-beat", px=60_000)
            scheduler.tick()
            ticks += 1
        assert len(recorder.of("redbeat_tick")) == ticks
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- batching


def test_a_tick_with_50_due_entries_makes_one_call_per_batch_hook(
    beat_app: Celery, recorder: Recorder, published: list[str]
) -> None:
    names = [f"e{i:02d}" for i in range(50)]
    for i, name in enumerate(names):
        due_entry(beat_app, name, late=50 - i)  # e00 is the most overdue: due order = name order
    assert len(recorder.of("redbeat_entry_saved")) == 50  # one per save() call
    assert [c["entry"].name for c in recorder.of("redbeat_entry_saved")] == names
    scheduler = scheduler_for(beat_app)
    try:
        recorder.clear()
        scheduler.tick()
        assert Counter(recorder.hooks()) == Counter(
            {
                "redbeat_scheduler_started": 1,
                "redbeat_make_lock": 1,
                "redbeat_lock_acquired": 1,
                "redbeat_decide_runs": 1,
                "redbeat_before_dispatch": 1,
                "redbeat_after_dispatch": 1,
                "redbeat_tick": 1,
            }
        )
        entries = recorder.one("redbeat_before_dispatch")["entries"]
        dispatched = recorder.one("redbeat_after_dispatch")["dispatched"]
        assert [e.name for e in entries] == names  # in due order
        assert [d.entry for d in dispatched] == entries
        assert [d.due_at for d in dispatched] == sorted(d.due_at for d in dispatched)
        assert recorder.one("redbeat_tick")["due"] == 50
        assert published == [f"tasks.{name}" for name in names]
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- failures


class Unpublishable(Task):  # type: ignore[misc]
    """A task whose publish fails, as with a broker that refuses the message."""

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broker says no")


def test_quarantine_and_a_failed_publish_are_reported_in_order(
    beat_app: Celery, recorder: Recorder, client: Any, published: list[str]
) -> None:
    def unpublishable() -> None: ...

    beat_app.task(name="tasks.unpublishable", base=Unpublishable, shared=False)(unpublishable)
    bad = RedBeatSchedulerEntry("bad", "tasks.unpublishable", schedule(30), app=beat_app)
    bad.last_run_at = ago(62)
    bad.save()
    due_entry(beat_app, "good")
    # An entry another process broke: its definition is not JSON.
    client.hset("redbeat:broken", mapping={"definition": "{not json"})
    client.zadd("redbeat::schedule", {"redbeat:broken": time.time() - 100})
    scheduler = scheduler_for(beat_app)
    try:
        recorder.clear()
        scheduler.tick()
        assert recorder.hooks() == [
            "redbeat_scheduler_started",
            "redbeat_make_lock",
            "redbeat_lock_acquired",
            "redbeat_decide_runs",
            "redbeat_entry_quarantined",  # once the commit stored it, before the publishes
            "redbeat_before_dispatch",
            "redbeat_dispatch_failed",
            "redbeat_after_dispatch",
            "redbeat_tick",
        ]
        quarantined = recorder.one("redbeat_entry_quarantined")
        assert quarantined["scheduler"] is scheduler
        assert quarantined["name"] == "broken"
        assert quarantined["reason"]
        assert get_runtime(beat_app).store.quarantined() == {"broken": quarantined["reason"]}

        entries = recorder.one("redbeat_before_dispatch")["entries"]
        assert [e.name for e in entries] == ["bad", "good"]
        failed = recorder.one("redbeat_dispatch_failed")
        assert failed["scheduler"] is scheduler
        assert failed["entry"] is entries[0]
        assert isinstance(failed["exc"], SchedulingError)
        assert "broker says no" in str(failed["exc"])
        (record,) = recorder.one("redbeat_after_dispatch")["dispatched"]
        assert record.entry is entries[1]
        assert recorder.one("redbeat_tick")["due"] == 3  # claimed: broken, bad and good
        assert published == ["tasks.good"]
    finally:
        scheduler.close()


def test_a_raising_hook_is_logged_once_with_its_plugin_and_the_beat_carries_on(
    beat_app: Celery,
    recorder: Recorder,
    register: Callable[[Celery, object, str], None],
    published: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Registered after the recorder, so it is called first: the recorder must still run.
    register(beat_app, Exploding(), "exploding-plugin")
    caplog.set_level(logging.DEBUG, logger="celery.beat")
    due_entry(beat_app, "a")
    scheduler = scheduler_for(beat_app)
    try:
        scheduler.tick()
        due_entry(beat_app, "b")
        scheduler.tick()
        scheduler.tick()
    finally:
        scheduler.close()

    assert published == ["tasks.a", "tasks.b"]  # dispatching went on
    assert recorder.hooks() == [
        "redbeat_entry_saved",
        "redbeat_scheduler_started",
        "redbeat_make_lock",
        "redbeat_lock_acquired",
        "redbeat_decide_runs",
        "redbeat_before_dispatch",
        "redbeat_after_dispatch",
        "redbeat_tick",
        "redbeat_entry_saved",
        "redbeat_decide_runs",
        "redbeat_before_dispatch",
        "redbeat_after_dispatch",
        "redbeat_tick",
        "redbeat_tick",
        "redbeat_scheduler_stopped",
        "redbeat_lock_lost",
    ]

    raised = Counter(h for h in recorder.hooks() if h in hookimpl_names(Exploding))
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and "exploding-plugin" in r.getMessage()
    ]
    # Once per hook, however often it raised, naming the plugin and the hook, with the traceback.
    logged = [cast("tuple[str, str]", r.args) for r in errors]
    assert sorted(logged) == sorted(("exploding-plugin", hook) for hook in raised)
    for record in errors:
        assert record.exc_info is not None
        assert "exploding plugin" in str(record.exc_info[1])
    repeats = [
        r for r in caplog.records if r.levelno == logging.DEBUG and "raised in" in r.getMessage()
    ]
    assert len(repeats) == sum(raised.values()) - len(raised)
    assert all(r.levelno < logging.ERROR for r in caplog.records if r not in errors)
