"""The Prometheus metrics plugin (``redbeat_prometheus``) against real servers.

Real schedulers (``RedBeatScheduler``, ``memory://`` broker) tick against the test server; ticks
are driven by calling ``tick()``. Metrics are read by scraping the plugin's real HTTP endpoint
on 127.0.0.1 (port 0: a free port), so what is checked is what Prometheus would see. One test
runs a real ``celery beat`` process (broker: database 1 of the test server) and compares the
scraped dispatch counter with the messages in the broker's queue; it is stopped by its pid.

The plugin is installed in the workspace environment and loads through its entry point; one test
checks exactly that. The others disable autoload and register the plugin module in the app's
plugin manager in a fixture, unregistering it afterwards, so no test depends on another's
plugins.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import prometheus_client
import pytest
import redis
from celery.schedules import schedule
from prometheus_client.parser import text_string_to_metric_families
from redbeat_test_support import ago

import redbeat_prometheus
from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.plugins import DISABLE_AUTOLOAD_ENV
from redbeat_core.runtime import get_runtime
from redbeat_prometheus import Exporter, PrometheusSettings, plugin

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_NAME = "prometheus-under-test"
ENTRY_POINT_NAME = "redbeat-prometheus:prometheus"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# ----------------------------------------------------------------------------- helpers


def due_entry(app: Any, name: str, task: str, *, every: float = 30, **kwargs: Any) -> Any:
    """An interval entry that last ran two intervals ago: due now, ``every`` seconds late."""
    entry = RedBeatSchedulerEntry(name, task, schedule(every), app=app, **kwargs)
    entry.last_run_at = ago(every * 2)
    return entry.save()


def later_entry(app: Any, name: str, task: str = "tasks.later") -> Any:
    entry = RedBeatSchedulerEntry(name, task, schedule(3600), app=app)
    return entry.save()


def scrape(address: tuple[str, int] | None) -> Samples:
    """GET /metrics from the plugin's endpoint and parse it like Prometheus does."""
    assert address is not None, "the plugin is not serving"
    host, port = address
    assert host == "127.0.0.1"
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def listening_ports() -> set[int]:
    """TCP ports this process listens on (Linux: our socket fds matched in /proc/net/tcp*)."""
    inodes: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


needs_proc = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads listening sockets from /proc (Linux)"
)


def port_is_free(port: int) -> bool:
    """Whether nothing listens on the port (connections in TIME_WAIT do not count, as for
    the server itself, which binds with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def metrics_app(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Apps whose plugin manager holds the metrics plugin, registered explicitly (entry-point
    autoload off) and unregistered when the test ends."""
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    managers: list[Any] = []

    def make(**conf: Any) -> Any:
        app = make_app(**{"redbeat_prometheus_port": 0, **conf})
        manager = get_runtime(app).plugins
        assert not manager.pm.has_plugin(ENTRY_POINT_NAME)
        manager.register(plugin, name=PLUGIN_NAME)
        managers.append(manager)
        return app

    yield make
    for manager in managers:
        manager.unregister(PLUGIN_NAME)


@pytest.fixture
def schedulers() -> Iterator[Callable[[Any], RedBeatScheduler]]:
    """Build schedulers; each is closed when the test ends (closing twice is harmless)."""
    built: list[RedBeatScheduler] = []

    def make(app: Any) -> RedBeatScheduler:
        scheduler = RedBeatScheduler(app=app)
        built.append(scheduler)
        return scheduler

    yield make
    for scheduler in built:
        scheduler.close()


def exporter(scheduler: Any) -> Exporter:
    found = redbeat_prometheus.exporter_for(scheduler)
    assert found is not None, "the plugin has not seen this scheduler"
    return found


# ----------------------------------------------------------------------------- loading


def test_the_installed_plugin_autoloads_through_its_entry_point(
    make_app: Any, schedulers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv("REDBEAT_BLOCK_PLUGINS", raising=False)
    app = make_app()  # no plugin setting at all
    manager = get_runtime(app).plugins
    assert manager.pm.get_plugin(ENTRY_POINT_NAME) is plugin
    scheduler = schedulers(app)
    scheduler.tick()
    registry = redbeat_prometheus.registry_for(scheduler)
    assert registry is not None
    assert registry.get_sample_value("redbeat_ticks_total", {"leader": "true"}) == 1


def test_autoload_off_leaves_the_plugin_out(
    make_app: Any, schedulers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    app = make_app()
    assert not get_runtime(app).plugins.pm.has_plugin(ENTRY_POINT_NAME)
    scheduler = schedulers(app)
    scheduler.tick()
    assert redbeat_prometheus.exporter_for(scheduler) is None


# ----------------------------------------------------------------------------- a beat run


def test_a_beat_run_moves_every_metric_by_the_right_amount(
    metrics_app: Any, schedulers: Any, client: Any
) -> None:
    app = metrics_app()
    for name in ("a1", "a2"):
        due_entry(app, name, "tasks.a")
    due_entry(app, "b1", "tasks.b")
    later_entry(app, "later1")
    later_entry(app, "later2")
    # Overdue by 30 s, as after a beat outage: the lateness histogram must show it.
    due_at = time.time() - 30
    client.zadd(
        "redbeat::schedule", dict.fromkeys(("redbeat:a1", "redbeat:a2", "redbeat:b1"), due_at)
    )
    scheduler = schedulers(app)

    scheduler.tick()  # start-up, lock, 3 due entries published
    address = exporter(scheduler).address
    first = scrape(address)
    assert value(first, "redbeat_ticks_total", leader="true") == 1
    assert value(first, "redbeat_ticks_total", leader="false") == 0
    assert value(first, "redbeat_dispatches_total", task="tasks.a") == 2
    assert value(first, "redbeat_dispatches_total", task="tasks.b") == 1
    assert value(first, "redbeat_dispatch_failures_total", task="tasks.a") == 0
    assert value(first, "redbeat_dispatch_lateness_seconds_count") == 3
    # due 30 s ago: every observation lands between the 10 s and the 60 s bucket
    assert value(first, "redbeat_dispatch_lateness_seconds_bucket", le="10.0") == 0
    assert value(first, "redbeat_dispatch_lateness_seconds_bucket", le="60.0") == 3
    lateness_sum = value(first, "redbeat_dispatch_lateness_seconds_sum")
    assert lateness_sum is not None
    assert 3 * 30 <= lateness_sum < 3 * 31
    assert value(first, "redbeat_lock_held") == 1
    epoch = value(first, "redbeat_lock_epoch")
    assert epoch is not None
    assert epoch >= 1
    assert value(first, "redbeat_entries_scheduled") == client.zcard("redbeat::schedule")
    assert value(first, "redbeat_entries_quarantined") == 0
    refreshed = value(first, "redbeat_entries_refreshed_timestamp_seconds")
    assert refreshed is not None
    assert abs(refreshed - datetime.now(UTC).timestamp()) < 60

    scheduler.tick()  # idle: only the tick counter moves
    second = scrape(address)
    assert value(second, "redbeat_ticks_total", leader="true") == 2
    assert value(second, "redbeat_dispatches_total", task="tasks.a") == 2
    assert value(second, "redbeat_dispatch_lateness_seconds_count") == 3

    for name in ("a1", "b1"):  # due again: +1 each
        RedBeatSchedulerEntry.from_key(f"redbeat:{name}", app=app).reschedule(ago(100))
    scheduler.tick()
    third = scrape(address)
    assert value(third, "redbeat_ticks_total", leader="true") == 3
    assert value(third, "redbeat_dispatches_total", task="tasks.a") == 3
    assert value(third, "redbeat_dispatches_total", task="tasks.b") == 2
    assert value(third, "redbeat_dispatch_lateness_seconds_count") == 5
    assert value(third, "redbeat_lock_epoch") == epoch

    scheduler.close()  # endpoint closed, lock released
    assert exporter(scheduler).address is None
    assert address is not None
    with pytest.raises(urllib.error.URLError):
        scrape(address)
    assert port_is_free(address[1])
    registry = redbeat_prometheus.registry_for(scheduler)
    assert registry is not None
    assert registry.get_sample_value("redbeat_lock_held") == 0


def test_a_corrupt_entry_shows_in_the_quarantine_gauge_at_the_next_scrape(
    metrics_app: Any, schedulers: Any, client: Any
) -> None:
    app = metrics_app(redbeat_prometheus_refresh_interval=3600)
    due_entry(app, "good", "tasks.good")
    scheduler = schedulers(app)
    scheduler.tick()
    address = exporter(scheduler).address
    assert value(scrape(address), "redbeat_entries_quarantined") == 0  # read; cached an hour

    client.hset("redbeat:corrupt", mapping={"definition": "{not json"})
    client.zadd("redbeat::schedule", {"redbeat:corrupt": 1})
    scheduler.tick()
    # The hour has not passed: the quarantine itself makes the next scrape read again.
    samples = scrape(address)
    assert value(samples, "redbeat_entries_quarantined") == 1
    # the corrupt entry left the schedule
    assert client.zscore("redbeat::schedule", "redbeat:corrupt") is None
    assert value(samples, "redbeat_entries_scheduled") == client.zcard("redbeat::schedule")
    assert value(samples, "redbeat_dispatches_total", task="tasks.good") == 1


def test_a_publish_failure_counts_for_its_task_and_the_others_still_publish(
    metrics_app: Any, schedulers: Any
) -> None:
    app = metrics_app()
    due_entry(app, "ok", "tasks.ok")
    # kombu raises SerializerNotInstalled at publish: a typo in an entry's options.
    due_entry(app, "typo", "tasks.typo", options={"serializer": "no-such-serializer"})
    scheduler = schedulers(app)
    scheduler.tick()
    samples = scrape(exporter(scheduler).address)
    assert value(samples, "redbeat_dispatch_failures_total", task="tasks.typo") == 1
    assert value(samples, "redbeat_dispatches_total", task="tasks.typo") == 0
    assert value(samples, "redbeat_dispatches_total", task="tasks.ok") == 1
    assert value(samples, "redbeat_dispatch_failures_total", task="tasks.ok") == 0
    assert value(samples, "redbeat_dispatch_lateness_seconds_count") == 1


def test_skipped_runs_are_counted_by_kind_and_plugin(metrics_app: Any, schedulers: Any) -> None:
    app = metrics_app()
    late = RedBeatSchedulerEntry(
        "late", "tasks.late", schedule(600), app=app, policy={"misfire": "skip"}
    )
    late.last_run_at = ago(7200)
    late.save()
    due_entry(app, "ok", "tasks.ok")
    scheduler = schedulers(app)
    scheduler.tick()
    samples = scrape(exporter(scheduler).address)
    assert value(samples, "redbeat_skipped_runs_total", kind="misfire",
                 plugin="redbeat.policies") == 1  # fmt: skip
    assert value(samples, "redbeat_dispatches_total", task="tasks.ok") == 1
    assert value(samples, "redbeat_dispatches_total", task="tasks.late") is None


def test_a_standby_counts_its_ticks_apart_and_does_not_hold_the_lock(
    metrics_app: Any, schedulers: Any
) -> None:
    leader_app, standby_app = metrics_app(), metrics_app()  # one schedule, two beats
    leader, standby = schedulers(leader_app), schedulers(standby_app)
    leader.tick()
    standby.tick()
    standby.tick()
    samples = scrape(exporter(standby).address)
    assert value(samples, "redbeat_ticks_total", leader="false") == 2
    assert value(samples, "redbeat_ticks_total", leader="true") == 0
    assert value(samples, "redbeat_lock_held") == 0
    assert value(samples, "redbeat_lock_epoch") == 0
    leader_epoch = value(scrape(exporter(leader).address), "redbeat_lock_epoch")
    assert leader_epoch is not None

    leader.close()  # releases the lock: the standby takes over with a higher epoch
    standby.tick()
    after = scrape(exporter(standby).address)
    assert value(after, "redbeat_lock_held") == 1
    new_epoch = value(after, "redbeat_lock_epoch")
    assert new_epoch is not None
    assert new_epoch > leader_epoch
    assert value(after, "redbeat_ticks_total", leader="true") == 1


def test_two_schedulers_in_one_process_keep_separate_registries(
    metrics_app: Any, schedulers: Any, client: Any
) -> None:
    one = metrics_app(redbeat_key_prefix="one:")
    two = metrics_app(redbeat_key_prefix="two:")
    for i in range(3):
        due_entry(one, f"e{i}", "tasks.shared")
    due_entry(two, "e0", "tasks.shared")
    first, second = schedulers(one), schedulers(two)
    first.tick()
    second.tick()
    address_one, address_two = exporter(first).address, exporter(second).address
    assert address_one is not None
    assert address_two is not None
    assert address_one[1] != address_two[1]
    assert redbeat_prometheus.registry_for(first) is not redbeat_prometheus.registry_for(second)
    a, b = scrape(address_one), scrape(address_two)
    assert value(a, "redbeat_dispatches_total", task="tasks.shared") == 3
    assert value(b, "redbeat_dispatches_total", task="tasks.shared") == 1
    assert value(a, "redbeat_entries_scheduled") == client.zcard("one::schedule")
    assert value(b, "redbeat_entries_scheduled") == client.zcard("two::schedule")
    assert client.zcard("one::schedule") == client.zcard("two::schedule") + 2
    # nothing in the process-wide default registry
    default = prometheus_client.REGISTRY.get_sample_value(
        "redbeat_dispatches_total", {"task": "tasks.shared"}
    )
    assert default is None


# ----------------------------------------------------------------------------- serving


@needs_proc
def test_without_a_port_setting_nothing_listens(metrics_app: Any, schedulers: Any) -> None:
    before = listening_ports()
    app = metrics_app(redbeat_prometheus_port=None)
    due_entry(app, "e", "tasks.e")
    scheduler = schedulers(app)
    scheduler.tick()
    assert listening_ports() == before
    assert exporter(scheduler).address is None
    registry = redbeat_prometheus.registry_for(scheduler)
    assert registry is not None  # still collected, for anyone who reads the registry
    assert registry.get_sample_value("redbeat_dispatches_total", {"task": "tasks.e"}) == 1


@needs_proc
def test_port_zero_picks_a_free_port_logs_it_and_frees_it_on_close(
    metrics_app: Any, schedulers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = schedulers(metrics_app())
    with caplog.at_level("INFO", logger="celery.beat"):
        scheduler.tick()
    address = exporter(scheduler).address
    assert address is not None
    assert address[1] in listening_ports()
    logged = [r.getMessage() for r in caplog.records if "serving metrics" in r.getMessage()]
    assert logged == [
        f"redbeat-prometheus: serving metrics on http://127.0.0.1:{address[1]}/metrics"
    ]
    scheduler.close()
    assert address[1] not in listening_ports()


@needs_proc
def test_a_scheduler_dropped_without_close_releases_its_port(metrics_app: Any) -> None:
    scheduler = RedBeatScheduler(app=metrics_app())
    scheduler.tick()
    address = exporter(scheduler).address
    assert address is not None
    assert address[1] in listening_ports()
    del scheduler
    gc.collect()
    assert address[1] not in listening_ports()


def test_a_taken_port_is_logged_and_the_beat_goes_on(
    metrics_app: Any, schedulers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = metrics_app(redbeat_prometheus_port=port)
        due_entry(app, "e", "tasks.e")
        scheduler = schedulers(app)
        with caplog.at_level("ERROR", logger="celery.beat"):
            scheduler.tick()
    assert exporter(scheduler).address is None
    assert any(f"127.0.0.1:{port}" in r.getMessage() for r in caplog.records)
    registry = redbeat_prometheus.registry_for(scheduler)
    assert registry is not None
    assert registry.get_sample_value("redbeat_dispatches_total", {"task": "tasks.e"}) == 1


def test_a_bad_port_setting_stops_start_up_naming_the_setting_and_the_plugin(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin declares its settings, so RedBeat checks them with its own at start-up:
    a bad one stops the beat (it was logged and the metrics silently not served before)."""
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    app = make_app(redbeat_plugins=["redbeat_prometheus.plugin"], redbeat_prometheus_port="http")
    with pytest.raises(ConfigurationError) as info:
        RedBeatScheduler(app=app)
    assert info.value.setting == "redbeat_prometheus_port"
    message = str(info.value)
    assert "redbeat_prometheus_port='http'" in message
    assert "(a setting of the plugin redbeat-prometheus)" in message


# ----------------------------------------------------------------------------- celery beat

BEAT_APP = """
import os

from celery import Celery

app = Celery("prometheus_e2e")
app.conf.update(
    broker_url=os.environ["E2E_BROKER_URL"],
    redbeat_redis_url=os.environ["E2E_SCHEDULE_URL"],
    redbeat_prometheus_port=0,
    beat_max_loop_interval=1,
    beat_schedule={"every-half-second": {"task": "e2e.tick", "schedule": 0.5}},
)
"""
SERVING = re.compile(r"redbeat-prometheus: serving metrics on http://127\.0\.0\.1:(\d+)/metrics")


def wait_for(condition: Callable[[], Any], what: str, popen: Any, log: Path) -> Any:
    deadline = time.monotonic() + 30
    while not (found := condition()):
        if popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what}: not seen; beat log:\n{log.read_text()[-4000:]}", pytrace=False)
        time.sleep(0.05)
    return found


def test_a_real_celery_beat_serves_metrics_that_match_its_publishes(
    tmp_path: Path, redbeat_url: str, client: Any
) -> None:
    """``celery beat`` with the plugin loaded from its entry point and only a port set."""
    (tmp_path / "prometheus_e2e.py").write_text(BEAT_APP)
    broker_url = redbeat_url.rsplit("/", 1)[0] + "/1"
    broker = redis.Redis.from_url(broker_url)
    env = {
        **os.environ,
        "E2E_BROKER_URL": broker_url,
        "E2E_SCHEDULE_URL": redbeat_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    for name in (DISABLE_AUTOLOAD_ENV, "REDBEAT_BLOCK_PLUGINS"):
        env.pop(name, None)
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [
                sys.executable,
                *("-m", "celery", "-A", "prometheus_e2e", "beat"),
                *("-S", "redbeat.RedBeatScheduler", "--loglevel=INFO"),
                f"--schedule={tmp_path / 'celerybeat-schedule'}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=env,
        )
    try:
        match = wait_for(lambda: SERVING.search(log.read_text()), "the endpoint", popen, log)
        address = ("127.0.0.1", int(match.group(1)))

        def published() -> int:
            return int(broker.llen("celery"))

        def three_dispatches() -> Samples | None:
            found = scrape(address)
            count = value(found, "redbeat_dispatches_total", task="e2e.tick") or 0
            return found if count >= 3 else None

        samples = wait_for(three_dispatches, "three dispatches counted", popen, log)
        # The counter never runs ahead of the broker's queue, and catches up with it.
        assert value(samples, "redbeat_dispatches_total", task="e2e.tick") <= published()
        in_queue = published()

        def caught_up() -> Samples | None:
            found = scrape(address)
            count = value(found, "redbeat_dispatches_total", task="e2e.tick") or 0
            return found if count >= in_queue else None

        later = wait_for(caught_up, f"the counter reaching the {in_queue} queued", popen, log)
        assert value(later, "redbeat_lock_held") == 1
        epoch = value(later, "redbeat_lock_epoch")
        assert epoch is not None
        assert epoch >= 1
        ticks = value(later, "redbeat_ticks_total", leader="true")
        assert ticks is not None
        assert ticks >= 3
        assert value(later, "redbeat_entries_scheduled") == client.zcard("redbeat::schedule")
        assert value(later, "redbeat_dispatch_failures_total", task="e2e.tick") == 0
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        broker.close()
    assert popen.returncode in (0, -signal.SIGTERM), log.read_text()[-4000:]
    assert "redbeat-prometheus: stopped serving metrics" in log.read_text()
    with pytest.raises(urllib.error.URLError):
        scrape(address)


# ----------------------------------------------------------------------------- settings


def test_settings_defaults_upper_case_and_strings() -> None:
    assert PrometheusSettings.from_conf({}) == PrometheusSettings(None, "127.0.0.1", 15.0)
    assert not PrometheusSettings.from_conf({}).serve
    conf = {
        "REDBEAT_PROMETHEUS_PORT": "9808",
        "redbeat_prometheus_addr": "::1",
        "redbeat_prometheus_refresh_interval": "2.5",
    }
    assert PrometheusSettings.from_conf(conf) == PrometheusSettings(9808, "::1", 2.5)


@pytest.mark.parametrize(
    ("setting", "bad"),
    [
        ("redbeat_prometheus_port", -1),
        ("redbeat_prometheus_port", 70000),
        ("redbeat_prometheus_port", True),
        ("redbeat_prometheus_port", "http"),
        ("redbeat_prometheus_addr", ""),
        ("redbeat_prometheus_addr", 127),
        ("redbeat_prometheus_refresh_interval", -1),
        ("redbeat_prometheus_refresh_interval", "soon"),
    ],
)
def test_bad_settings_name_the_setting(setting: str, bad: object) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(setting)):
        PrometheusSettings.from_conf({setting: bad})


# ----------------------------------------------------------------------------- refresh policy


class CountingConnection(redis.Connection):
    """A real connection that counts what it sends: one send = one round trip."""

    sent: ClassVar[int] = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


def test_ticks_make_no_round_trip_for_metrics_and_scrapes_read_at_most_once_per_interval(
    metrics_app: Any, make_app: Any, redbeat_url: str, schedulers: Any
) -> None:
    def counted_app(app: Any) -> Any:
        app.redbeat_redis = redis.Redis.from_url(
            redbeat_url, decode_responses=True, connection_class=CountingConnection
        )
        return app

    def trips_for_three_ticks(app: Any) -> int:
        due_entry(app, "e", "tasks.e")
        scheduler = schedulers(app)
        before = CountingConnection.sent
        for _ in range(3):  # start-up and lock, a busy tick, idle ticks
            scheduler.tick()
        trips = CountingConnection.sent - before
        scheduler.close()
        return trips

    without = trips_for_three_ticks(counted_app(make_app(redbeat_key_prefix="plain:")))
    app = counted_app(metrics_app(redbeat_prometheus_refresh_interval=3600))
    assert trips_for_three_ticks(app) == without

    scheduler = schedulers(app)
    scheduler.tick()
    address = exporter(scheduler).address
    before = CountingConnection.sent
    assert value(scrape(address), "redbeat_entries_scheduled") is not None
    assert CountingConnection.sent - before == 2  # count and quarantine: one read
    for _ in range(3):
        scrape(address)
    assert CountingConnection.sent - before == 2  # cached within the interval


class CountingStore:
    """A real store, counting the calls the entry gauges make to it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls = 0

    def count(self) -> int:
        self.calls += 1
        return int(self.store.count())

    def quarantined(self) -> dict[str, str]:
        self.calls += 1
        return dict(self.store.quarantined())


def test_entry_gauges_read_at_most_once_per_interval_unless_asked(make_app: Any) -> None:
    app = make_app()
    store = CountingStore(get_runtime(app).store)
    now = [1000.0]
    exp = Exporter(PrometheusSettings(refresh_interval=10.0), store, clock=lambda: now[0])
    registry = exp.registry
    assert store.calls == 0  # building and registering read nothing

    assert registry.get_sample_value("redbeat_entries_scheduled") == 0
    assert store.calls == 2
    later_entry(app, "new")
    for _ in range(50):  # fifty scrapes inside the interval: no round trip
        now[0] += 0.1
        assert registry.get_sample_value("redbeat_entries_scheduled") == 0
    assert store.calls == 2

    now[0] = 1010.0
    assert registry.get_sample_value("redbeat_entries_scheduled") == 1
    assert store.calls == 4

    exp.metrics.entries.request_refresh()  # an entry was quarantined: read at the next scrape
    registry.get_sample_value("redbeat_entries_quarantined")
    assert store.calls == 6


def test_entry_gauges_are_absent_until_read_and_keep_values_when_the_store_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Flaky:
        up = True

        def count(self) -> int:
            if not self.up:
                raise ConnectionError("down")
            return 7

        def quarantined(self) -> dict[str, str]:
            return {"bad": "reason"}

    store = Flaky()
    exp = Exporter(PrometheusSettings(refresh_interval=0.0))
    registry = exp.registry
    assert registry.get_sample_value("redbeat_entries_scheduled") is None  # no store yet
    exp.metrics.entries.store = store
    assert registry.get_sample_value("redbeat_entries_scheduled") == 7
    store.up = False
    with caplog.at_level("WARNING", logger="celery.beat"):
        for _ in range(3):
            assert registry.get_sample_value("redbeat_entries_scheduled") == 7
            assert registry.get_sample_value("redbeat_entries_quarantined") == 1
    assert len([r for r in caplog.records if "entry counts" in r.getMessage()]) == 1


# ----------------------------------------------------------------------------- docs


def test_the_docs_page_names_every_metric_and_setting() -> None:
    page = (ROOT / "docs" / "plugins" / "prometheus.md").read_text()
    missing = [name for name in redbeat_prometheus.METRIC_NAMES if f"`{name}`" not in page]
    missing += [s.name for s in redbeat_prometheus.SETTINGS if f"`{s.name}`" not in page]
    assert not missing, f"docs/plugins/prometheus.md does not document {missing}"
