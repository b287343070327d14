"""The lock strategy example plugin (``examples/redbeat-lockstrategy``), installed from its folder.

It proves that RedBeat's own strategy is an ordinary ``trylast`` implementation of the
first-result hook ``redbeat_make_lock``: once the plugin is loaded (through its entry point, or
by import path in ``redbeat_plugins`` with autoloading off; both ways are tested) and switched
on, real ``RedBeatScheduler`` objects ticking against a real server hold its lease under its own
key instead of ``redbeat::lock``, two of them exclude each other through it, the Redis store's
claim fences and renews it, and blocking the plugin brings RedBeat's lock back. RedBeat's lock
contract suite runs against the plugin's lock unchanged, on a real Redis Cluster the lease
lands in the schedule's slot, and a real ``celery beat`` process finds the plugin through its
entry point.

Ticks are driven by calling ``tick()``; publishes go to ``memory://`` and are counted with
Celery's ``before_task_publish`` signal. Waits are polls with deadlines.

The plugin must be installed in the test environment (from the repository root; ``uv sync``
removes it, so install it again after a sync)::

    uv pip install --python .venv/bin/python ./examples/redbeat-lockstrategy
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

INSTALL_LINE = "uv pip install --python .venv/bin/python ./examples/redbeat-lockstrategy"
if importlib.util.find_spec("redbeat_lockstrategy") is None:
    if os.environ.get("CI"):
        pytest.fail(f"redbeat-lockstrategy is not installed; run: {INSTALL_LINE}", pytrace=False)
    pytest.skip(
        f"redbeat-lockstrategy is not installed; run: {INSTALL_LINE}", allow_module_level=True
    )

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from celery.schedules import schedule  # noqa: E402
from redbeat_lockstrategy import (  # noqa: E402
    LockStrategySettings,
    NamespacedRedisLock,
    lease_key,
)
from redbeat_lockstrategy import plugin as lockstrategy_plugin  # noqa: E402
from redbeat_test_support import Published, ago, recording_publishes, wait_for  # noqa: E402

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry  # noqa: E402
from redbeat_core.config import RedBeatConfig  # noqa: E402
from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError  # noqa: E402
from redbeat_core.locks import NullLock  # noqa: E402
from redbeat_core.plugins import BLOCK_ENV, DISABLE_AUTOLOAD_ENV  # noqa: E402
from redbeat_core.runtime import get_runtime  # noqa: E402
from redbeat_core.testing.contract import LockContract  # noqa: E402
from redbeat_core.typing import Lock  # noqa: E402
from redbeat_redis import RedisKeys, RedisLock, RedisStore, RetryingConnection  # noqa: E402

LEASE_KEY = "redbeat::beat-leader"
CORE_LOCK_KEY = "redbeat::lock"
ENTRY_POINT = "lockstrategy"
ENTRY_POINT_PLUGIN = "redbeat-lockstrategy:lockstrategy"
IMPORT_PATH = "redbeat_lockstrategy.plugin"
#: A short lease and a fast standby poll, so that takeovers take milliseconds.
FAST_LOCK = {"redbeat_lock_timeout": 2.0, "redbeat_lock_poll_interval": 0.1}


def due_entry(app: Celery, name: str, every: float = 30) -> RedBeatSchedulerEntry:
    """An interval entry that last ran long enough ago to be due now."""
    item = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(every), app=app)
    item.last_run_at = ago(every * 2)
    return item.save()


@pytest.fixture
def published() -> Iterator[Published]:
    with recording_publishes() as record:
        yield record


@pytest.fixture(params=["entry-point", "redbeat_plugins"])
def loading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the plugin is loaded: its entry point (autoload), or ``redbeat_plugins`` with
    autoloading disabled."""
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    if request.param == "entry-point":
        monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    else:
        monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    return str(request.param)


@pytest.fixture
def plugin_name(loading: str) -> str:
    """The plugin's name in the plugin manager, which is also what blocks it."""
    return ENTRY_POINT_PLUGIN if loading == "entry-point" else IMPORT_PATH


@pytest.fixture
def strategy_app(make_app: Callable[..., Celery], loading: str) -> Callable[..., Celery]:
    """Apps (each one "process") with the plugin loaded the ``loading`` way and switched on."""

    def make(**conf: Any) -> Celery:
        settings: dict[str, Any] = {"redbeat_lockstrategy_enabled": True, **FAST_LOCK}
        if loading == "redbeat_plugins":
            settings["redbeat_plugins"] = [IMPORT_PATH]
        return make_app(**{**settings, **conf})

    return make


@pytest.fixture
def entry_point_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin is found through its entry point, nothing blocked."""
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)


def lock_of(scheduler: RedBeatScheduler) -> Lock:
    lock: Lock | None = scheduler.lock
    assert lock is not None, "the scheduler has not built its lock yet"
    return lock


def token_of(scheduler: RedBeatScheduler) -> str:
    fence = lock_of(scheduler).fence
    assert fence is not None, "this scheduler does not hold the lock"
    return fence.token


# ----------------------------------------------------------------------------- replacing the lock


def test_the_plugin_answers_before_the_trylast_default(
    strategy_app: Callable[..., Celery], plugin_name: str
) -> None:
    runtime = get_runtime(strategy_app())
    impls = runtime.plugins.pm.hook.redbeat_make_lock.get_hookimpls()
    by_name = {impl.plugin_name: impl for impl in impls}
    assert set(by_name) == {"redbeat.defaults", plugin_name}
    assert by_name["redbeat.defaults"].trylast  # RedBeat's own answer: an ordinary trylast hook
    assert not by_name[plugin_name].trylast
    # pluggy calls the list from the end: the plugin first, the default last.
    assert [impl.plugin_name for impl in impls] == ["redbeat.defaults", plugin_name]


def test_the_scheduler_holds_the_plugins_lease_not_redbeats_lock(
    strategy_app: Callable[..., Celery], client: Any, published: Published
) -> None:
    app = strategy_app()
    due_entry(app, "a")
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        lock = lock_of(scheduler)
        assert isinstance(lock, NamespacedRedisLock)
        assert lock.fence is not None
        assert lock.fence.key == LEASE_KEY
        assert lock.fence.epoch == 1
        assert client.get(LEASE_KEY) == lock.token
        assert client.get(LEASE_KEY + ":epoch") == "1"
        assert 0 < client.pttl(LEASE_KEY) <= 2000
        assert client.exists(CORE_LOCK_KEY, CORE_LOCK_KEY + ":epoch") == 0
        assert published.tasks == ["tasks.a"]  # the leader dispatches under the plugin's lock
    finally:
        scheduler.close()
    assert client.exists(LEASE_KEY) == 0  # released on shutdown, so a standby takes over at once


def test_settings_choose_the_key_and_the_lease(
    strategy_app: Callable[..., Celery], client: Any
) -> None:
    app = strategy_app(
        redbeat_key_prefix="myapp:",
        REDBEAT_LOCKSTRATEGY_NAMESPACE="nightly-leader",  # upper case works too
        redbeat_lockstrategy_ttl=7.5,
    )
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert client.get("myapp::nightly-leader") == token_of(scheduler)
        assert 6500 < client.pttl("myapp::nightly-leader") <= 7500
        assert lock_of(scheduler).fence.ttl == 7.5  # type: ignore[union-attr]
        assert client.exists("myapp::lock", LEASE_KEY) == 0
    finally:
        scheduler.close()


def test_two_schedulers_exactly_one_dispatches(
    strategy_app: Callable[..., Celery], client: Any, published: Published
) -> None:
    # Two apps: as if two beat processes; each publishes to its own queue, so we know who sent.
    apps = [strategy_app(task_default_queue=f"beat-{n}") for n in (0, 1)]
    names = [f"e{i}" for i in range(5)]
    for name in names:
        due_entry(apps[0], name)
    schedulers = [RedBeatScheduler(app=app) for app in apps]
    try:
        for _ in range(3):
            for scheduler in schedulers:
                scheduler.tick()
        leaders = [n for n, s in enumerate(schedulers) if lock_of(s).held]
        assert len(leaders) == 1
        leader, standby = leaders[0], 1 - leaders[0]
        assert client.get(LEASE_KEY) == token_of(schedulers[leader])
        assert sorted(published.by(f"beat-{leader}")) == [f"tasks.{n}" for n in names]
        assert published.by(f"beat-{standby}") == []
        assert client.exists(CORE_LOCK_KEY) == 0

        # The leader stops: it releases the lease, and the standby's next tick takes it.
        schedulers[leader].close()
        assert client.exists(LEASE_KEY) == 0
        due_entry(apps[standby], "after-failover")
        schedulers[standby].tick()
        assert client.get(LEASE_KEY) == token_of(schedulers[standby])
        assert lock_of(schedulers[standby]).fence.epoch == 2  # type: ignore[union-attr]
        assert published.by(f"beat-{standby}") == ["tasks.after-failover"]
    finally:
        for scheduler in schedulers:
            scheduler.close()


def test_the_leaders_claim_extends_the_plugins_lease(
    strategy_app: Callable[..., Celery], client: Any
) -> None:
    scheduler = RedBeatScheduler(app=strategy_app(redbeat_lockstrategy_ttl=5.0))
    try:
        scheduler.tick()
        for _ in range(2):  # each time: the lease nearly lapsed, an idle tick renews it
            client.pexpire(LEASE_KEY, 300)
            scheduler.tick()  # claim.lua checks fence.key == token and extends it
            assert 4000 < client.pttl(LEASE_KEY) <= 5000
            assert client.get(LEASE_KEY) == token_of(scheduler)
        assert client.exists(CORE_LOCK_KEY) == 0
    finally:
        scheduler.close()


def test_a_beat_whose_lease_was_taken_stops_dispatching(
    strategy_app: Callable[..., Celery], client: Any, published: Published
) -> None:
    app = strategy_app()
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        client.set(LEASE_KEY, "another-beat", px=60_000)  # e.g. our lease lapsed, another took it
        due_entry(app, "a")
        assert scheduler.tick() == scheduler.config.lock_poll_interval
        assert not lock_of(scheduler).held
        assert published.tasks == []  # the store's fence check refused the claim
        assert scheduler.tick() == scheduler.config.lock_poll_interval  # a standby now
        assert published.tasks == []
        client.delete(LEASE_KEY)  # the other beat went away
        scheduler.tick()
        assert lock_of(scheduler).fence.epoch == 2  # type: ignore[union-attr]
        assert published.tasks == ["tasks.a"]
    finally:
        scheduler.close()
    assert client.get(LEASE_KEY) is None


def test_blocking_the_plugin_falls_back_to_redbeats_lock(
    strategy_app: Callable[..., Celery],
    loading: str,
    plugin_name: str,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An entry point can be blocked by its bare name too; an import path by the path.
    block_names = [ENTRY_POINT, plugin_name] if loading == "entry-point" else [plugin_name]
    for block in block_names:
        monkeypatch.setenv(BLOCK_ENV, block)
        app = strategy_app()
        scheduler = RedBeatScheduler(app=app)
        try:
            assert not get_runtime(app).plugins.pm.has_plugin(plugin_name)
            scheduler.tick()
            lock = lock_of(scheduler)
            assert isinstance(lock, RedisLock), block
            assert client.get(CORE_LOCK_KEY) == token_of(scheduler)
            assert client.exists(LEASE_KEY) == 0
        finally:
            scheduler.close()
        assert client.exists(CORE_LOCK_KEY) == 0


# ----------------------------------------------------------------------------- when it defers


@pytest.mark.usefixtures("entry_point_only")
def test_installed_but_not_switched_on_changes_nothing(
    make_app: Callable[..., Celery], client: Any
) -> None:
    app = make_app(**FAST_LOCK)
    scheduler = RedBeatScheduler(app=app)
    try:
        assert get_runtime(app).plugins.pm.has_plugin(ENTRY_POINT_PLUGIN)
        scheduler.tick()
        assert isinstance(lock_of(scheduler), RedisLock)
        assert client.get(CORE_LOCK_KEY) == token_of(scheduler)
        assert client.exists(LEASE_KEY) == 0
    finally:
        scheduler.close()


def test_autoload_off_and_not_named_changes_nothing(
    make_app: Callable[..., Celery], client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    app = make_app(redbeat_lockstrategy_enabled=True, **FAST_LOCK)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert isinstance(lock_of(scheduler), RedisLock)
        assert client.exists(LEASE_KEY) == 0
    finally:
        scheduler.close()


def test_no_lock_key_still_means_no_lock(
    strategy_app: Callable[..., Celery], client: Any, published: Published
) -> None:
    app = strategy_app(redbeat_lock_key=None)
    due_entry(app, "a")
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert isinstance(lock_of(scheduler), NullLock)
        assert published.tasks == ["tasks.a"]
        assert client.exists(LEASE_KEY, CORE_LOCK_KEY) == 0
    finally:
        scheduler.close()


def test_a_backend_that_is_not_redis_is_left_to_its_own_lock(
    make_app: Callable[..., Celery],
) -> None:
    class FileBackend:  # a backend with no Redis client, as the SQLite example's
        client = None

    config = RedBeatConfig.from_app(make_app(redbeat_lockstrategy_enabled=True))
    assert lockstrategy_plugin.redbeat_make_lock(config, FileBackend()) is None  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- settings


@pytest.mark.usefixtures("entry_point_only")
@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("redbeat_lockstrategy_ttl", 0.5, "longer than redbeat_lock_renew_interval"),
        ("redbeat_lockstrategy_ttl", "soon", "a number of seconds"),
        ("redbeat_lockstrategy_ttl", True, "a number of seconds"),
        ("redbeat_lockstrategy_namespace", "", "non-empty string"),
        ("redbeat_lockstrategy_namespace", 3, "non-empty string"),
        ("redbeat_lockstrategy_enabled", "yes", "True or False"),
    ],
)
def test_a_bad_setting_stops_the_beat_naming_it(
    make_app: Callable[..., Celery], setting: str, value: Any, message: str
) -> None:
    # lock timeout 2 s: renewed every 0.67 s, so a 0.5 s lease would lapse between renewals
    app = make_app(**{"redbeat_lockstrategy_enabled": True, **FAST_LOCK, setting: value})
    # The plugin declares its settings: they are checked with RedBeat's, before anything runs.
    with pytest.raises(ConfigurationError, match=message) as info:
        RedBeatScheduler(app=app)
    assert info.value.setting == setting
    assert "(a setting of the plugin redbeat-lockstrategy)" in str(info.value)


def test_defaults_follow_redbeats_settings(make_app: Callable[..., Celery]) -> None:
    settings = LockStrategySettings.from_config(
        RedBeatConfig.from_app(make_app(redbeat_lock_timeout=12.0))
    )
    assert (settings.namespace, settings.key, settings.ttl) == ("beat-leader", LEASE_KEY, 12.0)
    assert LockStrategySettings.from_config(RedBeatConfig()).key == LEASE_KEY  # no app: defaults


@pytest.mark.parametrize(
    ("prefix", "namespace", "key"),
    [
        ("redbeat:", "beat-leader", "redbeat::beat-leader"),
        ("{redbeat}:", "beat-leader", "{redbeat}::beat-leader"),  # a cluster's hash tag is kept
        ("redbeat:", "redbeat::mine", "redbeat::mine"),  # already prefixed: as written
    ],
)
def test_lease_key(prefix: str, namespace: str, key: str) -> None:
    assert lease_key(prefix, namespace) == key


# ----------------------------------------------------------------------------- the lock itself


@pytest.fixture
def store(client: Any) -> RedisStore:
    keys = RedisKeys("redbeat:", "redbeat::schedule", "redbeat::statics", "redbeat::quarantine")
    return RedisStore(client=client, keys=keys, retry=RetryingConnection(None, client))


class TestNamespacedRedisLock(LockContract):
    """RedBeat's lock contract, unchanged, against the plugin's lock and the Redis store: the
    store checks and extends a lease it never took."""

    @pytest.fixture
    def make_lock(self, client: Any) -> Callable[[float], Lock]:
        def make(ttl: float) -> Lock:
            return NamespacedRedisLock(
                client=client, key=LEASE_KEY, ttl=ttl, retry=RetryingConnection(None, client)
            )

        return make


def test_an_unreachable_server_is_a_storage_outage(
    redbeat_server_factory: Callable[..., Any],
) -> None:
    server = redbeat_server_factory()
    conn = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=2)
    try:
        lock = NamespacedRedisLock(client=conn, key=LEASE_KEY, ttl=2.0)
        assert lock.acquire()
        server.stop()
        # The scheduler keeps its loop alive on this error and steps down once the lease lapsed.
        with pytest.raises(StoreUnavailableError, match="beat lock"):
            lock.release()
        with pytest.raises(StoreUnavailableError):
            lock.acquire()
    finally:
        conn.close()


# ----------------------------------------------------------------------------- Redis Cluster


@pytest.fixture(scope="module")
def small_cluster(redbeat_server_kind: str) -> Iterator[Any]:
    """Three primaries, no replicas: enough for slots, quick to build; stopped by pids."""
    from redbeat_redis.testing.cluster import start_cluster

    topology = start_cluster(redbeat_server_kind, primaries=3, replicas_per_primary=0)
    try:
        yield topology
    finally:
        topology.stop()


def test_on_a_cluster_the_lease_shares_the_schedules_slot(
    small_cluster: Any,
    make_app: Callable[..., Celery],
    monkeypatch: pytest.MonkeyPatch,
    published: Published,
) -> None:
    small_cluster.flushall()
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")  # RedBeat's own cluster backend still loads
    app = make_app(
        redbeat_redis_url=small_cluster.url(),
        redbeat_plugins=[IMPORT_PATH],
        redbeat_lockstrategy_enabled=True,
        **FAST_LOCK,
    )
    due_entry(app, "a")
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        lock = lock_of(scheduler)
        assert isinstance(lock, NamespacedRedisLock)
        key = "{redbeat}::beat-leader"  # the cluster backend's prefix carries the hash tag
        assert lock.key == key
        assert small_cluster.keyslot(key) == small_cluster.keyslot("{redbeat}::schedule")
        assert small_cluster.keyslot(key + ":epoch") == small_cluster.keyslot(key)
        assert published.tasks == ["tasks.a"]  # claim and commit checked the lease in one script
        node = small_cluster.node_for_key(key)
        assert node.call("GET", key) == token_of(scheduler).encode()
    finally:
        scheduler.close()
    assert small_cluster.node_for_key(key).call("EXISTS", key) == 0


# ----------------------------------------------------------------------------- a real celery beat

BEAT_APP = textwrap.dedent(
    """
    import os

    from celery import Celery

    BASE = os.environ["LOCKSTRATEGY_SERVER"]
    app = Celery("lockstrategy_beat")
    app.conf.update(
        broker_url=BASE + "/1",
        redbeat_redis_url=BASE + "/0",
        redbeat_lockstrategy_enabled=True,
        beat_max_loop_interval=1,
        beat_schedule={"tick": {"task": "lockstrategy.noop", "schedule": 0.5}},
    )
    """
)


@pytest.mark.usefixtures("entry_point_only")
def test_a_real_celery_beat_finds_the_plugin_through_its_entry_point(
    tmp_path: Path, redbeat_url: str, client: Any
) -> None:
    (tmp_path / "lockstrategy_beat.py").write_text(BEAT_APP)
    base = redbeat_url.rsplit("/", 1)[0]
    broker = redis.Redis.from_url(base + "/1", decode_responses=True)
    log = tmp_path / "beat.log"
    env = {
        **os.environ,
        "LOCKSTRATEGY_SERVER": base,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        *(sys.executable, "-m", "celery", "-A", "lockstrategy_beat", "beat"),
        *("-S", "redbeat.RedBeatScheduler", "--loglevel=INFO"),
        f"--schedule={tmp_path / 'celerybeat-schedule'}",
        f"--pidfile={tmp_path / 'beat.pid'}",
    ]
    with log.open("ab") as out:
        beat = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=env,
        )
    try:

        def leading_and_sending() -> bool:
            if beat.poll() is not None:
                pytest.fail(f"beat exited ({beat.returncode}):\n{log.read_text()}", pytrace=False)
            return client.exists(LEASE_KEY) == 1 and broker.llen("celery") >= 2

        wait_for(leading_and_sending, 45.0, "beat holding the plugin's lease and publishing")
        assert client.exists(CORE_LOCK_KEY) == 0
        assert "the beat lock is the lease 'redbeat::beat-leader'" in log.read_text()
        beat.send_signal(signal.SIGTERM)
        beat.wait(timeout=15)
        assert client.exists(LEASE_KEY) == 0  # released on shutdown
    finally:
        if beat.poll() is None:
            beat.kill()
            beat.wait()
        broker.close()
