"""The SQLite example backend (``examples/redbeat-sqlite``), installed from its folder.

It is tested the way a third-party backend would be: RedBeat's contract suite, unchanged,
against a real database file in ``tmp_path``; real ``RedBeatScheduler`` objects ticking against
that file (ticks driven by calling ``tick()``; publishes on ``memory://`` counted with Celery's
``before_task_publish`` signal); and real ``celery beat`` processes whose schedule is the file
and whose broker is database 1 of the test server, where messages are counted in the queue's
list. Waits are polls with deadlines; every process is stopped by its own pid.

The plugin must be installed in the test environment (from the repository root)::

    uv pip install --python .venv/bin/python -e examples/redbeat-sqlite
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

INSTALL_LINE = "uv pip install --python .venv/bin/python -e examples/redbeat-sqlite"
if importlib.util.find_spec("redbeat_sqlite") is None:
    if os.environ.get("CI"):
        pytest.fail(f"redbeat-sqlite is not installed; run: {INSTALL_LINE}", pytrace=False)
    pytest.skip(f"redbeat-sqlite is not installed; run: {INSTALL_LINE}", allow_module_level=True)

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from celery.schedules import crontab, schedule  # noqa: E402
from redbeat_sqlite import (  # noqa: E402
    Database,
    SqliteBackend,
    SqliteLocation,
    SqliteLock,
    SqliteStore,
    parse_url,
)
from redbeat_test_support import Published, ago, recording_publishes, wait_for  # noqa: E402

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry  # noqa: E402
from redbeat_core.exceptions import (  # noqa: E402
    ConfigurationError,
    UnknownBackendError,
)
from redbeat_core.plugins import BLOCK_ENV, DISABLE_AUTOLOAD_ENV  # noqa: E402
from redbeat_core.runtime import get_runtime  # noqa: E402
from redbeat_core.schedules import clocked  # noqa: E402
from redbeat_core.testing.concurrency import run_together  # noqa: E402
from redbeat_core.testing.contract import LockContract, Outage, StoreContract  # noqa: E402
from redbeat_core.typing import Lock  # noqa: E402

NOW = 1_700_000_000.0
#: SQLite's clock in Unix seconds, as the backend reads it.
CLOCK = "((julianday('now') - 2440587.5) * 86400.0)"
LOCK_KEY = "redbeat::lock"
#: A short lease and a fast standby poll, so that takeovers in these tests take milliseconds.
FAST_LOCK = {"redbeat_lock_timeout": 2.0, "redbeat_lock_poll_interval": 0.1}


def read_db(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the file, through a connection of the test's own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def write_db(path: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


# ----------------------------------------------------------------------------- the contract


@pytest.fixture
def contract_db(tmp_path: Path) -> Path:
    return tmp_path / "contract.db"


@pytest.fixture
def store(contract_db: Path) -> Iterator[SqliteStore]:
    database = Database.open(SqliteLocation(contract_db))
    yield SqliteStore(database)
    database.close()


@pytest.fixture
def make_store(contract_db: Path) -> Iterator[Callable[[], SqliteStore]]:
    """Each store on a connection of its own to the same file, as another process has."""
    opened: list[Database] = []

    def make() -> SqliteStore:
        opened.append(Database.open(SqliteLocation(contract_db)))
        return SqliteStore(opened[-1])

    yield make
    for database in opened:
        database.close()


@pytest.fixture
def store_outage(tmp_path: Path) -> Iterator[Outage]:
    """What makes a SQLite file unreachable on one host: another process holding its write
    lock past the store's ``timeout`` (50 ms here). Every write then fails as "database is
    locked"; reads go on in WAL mode."""
    path = tmp_path / "outage.db"
    database = Database.open(SqliteLocation(path, timeout=0.05))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def begin() -> None:
        holder.execute("BEGIN IMMEDIATE")

    def end() -> None:
        holder.execute("ROLLBACK")

    try:
        yield Outage(SqliteStore(database), begin=begin, end=end)
    finally:
        holder.close()
        database.close()


class TestSqliteStore(StoreContract):
    pass


class TestSqliteLock(LockContract):
    @pytest.fixture
    def make_lock(self, contract_db: Path) -> Iterator[Callable[[float], Lock]]:
        opened: list[Database] = []

        def make(ttl: float) -> Lock:
            # Each contender has its own connection to the file, as another process would.
            database = Database.open(SqliteLocation(contract_db))
            opened.append(database)
            return SqliteLock(database, key=LOCK_KEY, ttl=ttl)

        yield make
        for database in opened:
            database.close()


def test_a_lapsed_lease_fails_the_fence_even_when_nobody_took_it(
    store: SqliteStore, contract_db: Path
) -> None:
    # Redis gets this for free (the lock key expires); here the fence check compares times.
    lock = SqliteLock(store.database, key=LOCK_KEY, ttl=0.2)
    assert lock.acquire()
    fence = lock.fence
    assert fence is not None
    # Watched from outside: a claim would extend the lease it checks.
    wait_for(
        lambda: read_db(contract_db, f"SELECT expires_at <= {CLOCK} FROM lease") == [(1,)],
        5.0,
        "the lease lapsed",
    )
    assert not store.claim_due(fence, NOW, 10).owned
    assert not store.commit(fence, [])
    assert lock.acquire()  # taking it again is a new acquisition: a new epoch
    assert lock.fence is not None
    assert lock.fence.epoch == fence.epoch + 1


# ----------------------------------------------------------------------------- the file


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/beat/schedule.db", "/var/lib/beat/schedule.db"),
        ("sqlite:///schedule.db", "/work/dir/schedule.db"),
        ("sqlite:///beat/schedule.db", "/work/dir/beat/schedule.db"),
        ("SQLITE:////x/my%20schedule.db", "/x/my schedule.db"),
    ],
)
def test_url_forms(url: str, expected: str) -> None:
    assert parse_url(url, cwd=Path("/work/dir")).path == Path(expected)


def test_url_timeout_parameter() -> None:
    assert parse_url("sqlite:////x.db").timeout == 5.0
    assert parse_url("sqlite:////x.db?timeout=0.5").timeout == 0.5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/x.db", "no host"),
        ("sqlite://beat:hunter2@host/x.db", r"no host \('host'\)"),
        ("sqlite:////x.db?password=hunter2", "unknown parameter 'password'"),
        ("sqlite://", "in-memory"),
        ("sqlite:///", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:////x.db?mode=ro", "unknown parameter 'mode'"),
        ("sqlite:////x.db?timeout=soon", "timeout must be"),
        ("sqlite:////x.db?timeout=-1", "timeout must be"),
        ("redis://h/0", "four slashes"),
    ],
)
def test_bad_urls_name_the_setting(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        parse_url(url, setting="redbeat_url")
    assert info.value.setting == "redbeat_url"
    assert "hunter2" not in str(info.value)  # a password in the URL is never shown


def test_the_file_is_created_in_wal_mode_with_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    database = Database.open(parse_url(f"sqlite:///{path}?timeout=2.5"))
    try:
        with database.transaction(write=False) as conn:
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert read_db(path, "PRAGMA journal_mode") == [("wal",)]
        assert read_db(path, "PRAGMA user_version") == [(2,)]
        tables = {name for (name,) in read_db(path, "SELECT name FROM sqlite_master")}
        assert {"entries", "statics", "quarantine", "lease", "entry_runs", "runs"} <= tables
    finally:
        database.close()


def test_a_missing_directory_fails_at_start_up_naming_the_setting(tmp_path: Path) -> None:
    app = Celery("sqlite-missing-dir", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url=f"sqlite:///{tmp_path}/nope/s.db")
    try:
        with pytest.raises(ConfigurationError, match="does not exist") as info:
            RedBeatScheduler(app=app)
        assert info.value.setting == "redbeat_url"
    finally:
        app.close()


def open_into(opened: list[Database], path: Path) -> None:
    opened.append(Database.open(SqliteLocation(path)))


def test_processes_opening_a_new_file_at_once_all_start(tmp_path: Path) -> None:
    """Beats deployed together create the file together. Converting a new file to WAL does not
    wait for SQLite's busy timeout, so one of them failed at start-up ("database is locked")
    in about one race in ten, found by the contract's two-beats case. Each round: a new file,
    four openers released at once (threads, each with its own connection, as processes)."""
    for race in range(100):
        path = tmp_path / f"new-{race}.db"
        opened: list[Database] = []
        try:
            run_together([functools.partial(open_into, opened, path)] * 4)
        finally:
            for database in opened:
                database.close()
        assert read_db(path, "PRAGMA journal_mode") == [("wal",)]


def test_a_version_1_file_gains_the_history_tables_and_keeps_its_entries(tmp_path: Path) -> None:
    """Files written before the run history (schema 1) are upgraded when opened."""
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE entries (name TEXT PRIMARY KEY NOT NULL, definition TEXT NOT NULL, "
            "meta TEXT, policy TEXT, score REAL)"
        )
        conn.execute("INSERT INTO entries VALUES ('old', '{}', NULL, NULL, 5.0)")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    database = Database.open(SqliteLocation(path))
    database.close()
    assert read_db(path, "PRAGMA user_version") == [(2,)]
    assert read_db(path, "SELECT name, score FROM entries") == [("old", 5.0)]
    assert read_db(path, "SELECT COUNT(*) FROM entry_runs") == [(0,)]


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    write_db(path, "PRAGMA user_version = 99")
    with pytest.raises(ConfigurationError, match="newer redbeat-sqlite"):
        Database.open(SqliteLocation(path))


# ----------------------------------------------------------------------------- a real scheduler


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture
def make_sqlite_app(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Celery]]:
    """Celery apps whose schedule is ``db_path`` (through the installed plugin's entry point)
    and whose broker is ``memory://``; each app is one "process" with its own connection."""
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    names = itertools.count()
    apps: list[Celery] = []

    def make(**conf: Any) -> Celery:
        app = Celery(f"sqlite-test-{next(names)}", set_as_current=False)
        app.conf.update(
            {
                "broker_url": "memory://",
                "redbeat_url": f"sqlite:///{db_path}",
                "beat_max_loop_interval": 5,
                **conf,
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        runtime = getattr(app, "redbeat_runtime", None)
        if runtime is not None:
            runtime.close()
        app.close()


@pytest.fixture
def published() -> Iterator[Published]:
    with recording_publishes() as record:
        yield record


def due_entry(app: Celery, name: str, task: str | None = None, every: float = 30) -> Any:
    """An interval entry that last ran long enough ago to be due now."""
    item = RedBeatSchedulerEntry(name, task or f"tasks.{name}", schedule(every), app=app)
    item.last_run_at = ago(every * 2)
    return item.save()


def test_the_backend_is_sqlite(make_sqlite_app: Callable[..., Celery], db_path: Path) -> None:
    app = make_sqlite_app()
    scheduler = RedBeatScheduler(app=app)
    try:
        backend = get_runtime(app).backend
        assert isinstance(backend, SqliteBackend)
        assert backend.describe() == f"sqlite -> {db_path}"
        scheduler.tick()
        assert isinstance(scheduler.lock, SqliteLock)
    finally:
        scheduler.close()


def test_interval_crontab_and_one_off_are_dispatched(
    make_sqlite_app: Callable[..., Celery], published: Published, db_path: Path
) -> None:
    app = make_sqlite_app()
    due_entry(app, "interval", every=30)
    minutely = RedBeatSchedulerEntry("cron", "tasks.cron", crontab(minute="*"), app=app)
    minutely.last_run_at = ago(61)  # missed its last minute boundary: due at once
    minutely.save()
    RedBeatSchedulerEntry("once", "tasks.once", clocked(ago(1)), app=app).save()
    later = datetime.now(UTC) + timedelta(hours=1)
    RedBeatSchedulerEntry("later", "tasks.later", clocked(later), app=app).save()

    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert sorted(published.tasks) == ["tasks.cron", "tasks.interval", "tasks.once"]
        scheduler.tick()
        assert len(published.tasks) == 3  # nothing else is due
    finally:
        scheduler.close()

    rows = {
        name: (json.loads(meta)["total_run_count"], score)
        for name, meta, score in read_db(db_path, "SELECT name, meta, score FROM entries")
    }
    now = time.time()
    assert rows["interval"][0] == 1
    assert 25 < rows["interval"][1] - now <= 30
    cron_runs, cron_score = rows["cron"]
    assert cron_runs == 1
    assert cron_score % 60 == pytest.approx(0, abs=0.002)
    assert 0 < cron_score - now <= 60
    assert rows["once"] == (1, None)  # ran once, then left the schedule
    assert rows["later"][0] == 0
    assert rows["later"][1] == pytest.approx(later.timestamp(), abs=0.002)


def test_two_schedulers_on_one_file_exactly_one_dispatches(
    make_sqlite_app: Callable[..., Celery], published: Published
) -> None:
    control = make_sqlite_app()
    first = RedBeatScheduler(app=make_sqlite_app(task_default_queue="first", **FAST_LOCK))
    second = RedBeatScheduler(app=make_sqlite_app(task_default_queue="second", **FAST_LOCK))
    try:
        for i in range(5):
            due_entry(control, f"e{i}")
        for _ in range(3):
            first.tick()
            assert second.tick() == second.config.lock_poll_interval  # a standby only polls
            RedBeatSchedulerEntry.from_key("redbeat:e0", app=control).reschedule(ago(100))
        assert published.by("second") == []
        assert len(published.by("first")) == 5 + 2  # all five once, then e0 made due twice
        assert first.lock is not None
        assert first.lock.held
        assert second.lock is not None
        assert not second.lock.held

        first.close()  # a graceful stop releases the lease: the standby takes over at once
        second.tick()
        assert second.lock.held
        assert published.by("second") == ["tasks.e0"]
    finally:
        first.close()
        second.close()


def test_a_leader_whose_lease_was_taken_never_dispatches(
    make_sqlite_app: Callable[..., Celery], published: Published, db_path: Path
) -> None:
    control = make_sqlite_app()
    old = RedBeatScheduler(app=make_sqlite_app(task_default_queue="old", **FAST_LOCK))
    new = RedBeatScheduler(app=make_sqlite_app(task_default_queue="new", **FAST_LOCK))
    try:
        old.tick()
        assert old.lock is not None
        assert old.lock.fence is not None
        old_epoch = old.lock.fence.epoch
        # The old leader stalls past its lease (a long GC pause, a suspended VM): the lease
        # expires and the standby takes it with a higher fencing epoch.
        write_db(db_path, "UPDATE lease SET expires_at = 0 WHERE key = ?", LOCK_KEY)
        new.tick()
        assert new.lock is not None
        assert new.lock.fence is not None
        assert new.lock.fence.epoch == old_epoch + 1

        due_entry(control, "job")
        assert old.tick() == old.config.lock_poll_interval  # its claim fails: it steps down
        assert not old.lock.held
        new.tick()
        assert published.by("old") == []
        assert published.by("new") == ["tasks.job"]
    finally:
        old.close()  # never frees the lease it no longer holds
        holders = read_db(db_path, "SELECT token FROM lease WHERE key = ?", LOCK_KEY)
        assert new.lock is not None
        assert holders == [(getattr(new.lock, "token", None),)]
        new.close()


# ----------------------------------------------------------------------------- registration


def test_the_installed_distribution_declares_the_entry_point() -> None:
    (ep,) = [ep for ep in entry_points(group="redbeat") if ep.value == "redbeat_sqlite.plugin"]
    assert ep.name == "sqlite"
    assert ep.dist is not None
    assert ep.dist.name == "redbeat-sqlite"


def test_registered_through_its_entry_point(
    make_sqlite_app: Callable[..., Celery],
) -> None:
    runtime = get_runtime(make_sqlite_app())
    assert runtime.plugins.pm.has_plugin("redbeat-sqlite:sqlite")
    assert "sqlite" in runtime.registry.schemes


def test_registered_by_the_plugins_setting_when_autoload_is_off(
    make_sqlite_app: Callable[..., Celery],
    published: Published,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    with pytest.raises(UnknownBackendError, match="SQLite example plugin"):
        RedBeatScheduler(app=make_sqlite_app())

    app = make_sqlite_app(redbeat_plugins=["redbeat_sqlite.plugin"])
    due_entry(app, "a")
    scheduler = RedBeatScheduler(app=app)
    try:
        plugins = get_runtime(app).plugins.pm
        assert plugins.has_plugin("redbeat_sqlite.plugin")
        assert not plugins.has_plugin("redbeat-sqlite:sqlite")
        scheduler.tick()
        assert published.tasks == ["tasks.a"]
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- real celery beat

START_TIMEOUT = 45.0
RUN_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
BROKER_QUEUE = "celery"  # the default queue: a list of that name in the broker's database
DISPATCH_LINE = "Scheduler: Sending due task"
INTERRUPTED_LINE = "(it may not have been sent)"

APP_MODULE = '''
"""Celery app for the SQLite end-to-end tests (written by the test into its tmp_path)."""
import os

from celery import Celery

app = Celery("sqlite_e2e")
app.conf.update(
    broker_url=os.environ["E2E_BROKER_URL"],
    redbeat_url=os.environ["E2E_SCHEDULE_URL"],
    beat_max_loop_interval=1,
    redbeat_lock_timeout=3,
    redbeat_lock_poll_interval=0.2,
    broker_connection_retry_on_startup=True,
    beat_schedule={"static": {"task": "e2e.static", "schedule": 1.0}},
)
if os.environ.get("E2E_PLUGINS"):
    app.conf.redbeat_plugins = os.environ["E2E_PLUGINS"].split(",")
'''


@dataclass
class Beat:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def dispatches(self) -> int:
        return self.output().count(DISPATCH_LINE)

    def interrupted(self) -> int:
        """Publishes a stop cut short (logged before they start, so maybe never sent): with
        at-most-once delivery that run is lost, and the test stops a beat right after it logs
        a dispatch line."""
        return self.output().count(INTERRUPTED_LINE)


def stop(popen: subprocess.Popen[bytes]) -> None:
    """SIGTERM by its own pid, wait with a deadline, then SIGKILL."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


@dataclass
class Beats:
    """The ``celery beat`` processes one test started, all stopped by pid at its end."""

    workdir: Path
    env: dict[str, str]
    broker: Any
    started: list[Beat] = field(default_factory=list)

    def start(self, name: str, **env: str) -> Beat:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "sqlite_e2e_app",
                    "beat",
                    "-S",
                    "redbeat.RedBeatScheduler",
                    "--loglevel=INFO",
                    f"--schedule={self.workdir / f'{name}-celerybeat-schedule'}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**self.env, **env},
            )
        beat = Beat(name, popen, log)
        self.started.append(beat)
        return beat

    def messages(self) -> list[str]:
        """Task names of the messages waiting in the broker's queue, oldest first."""
        raw = self.broker.lrange(BROKER_QUEUE, 0, -1)
        return [json.loads(item)["headers"]["task"] for item in reversed(raw)]

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for beat in self.started:
                code = beat.popen.poll()
                if code is not None and beat.popen.returncode not in (0, -signal.SIGTERM):
                    pytest.fail(f"{beat.name} exited with {code}:\n{self.logs()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what}: not within {timeout:g} s; broker holds {self.messages()}\n"
                    f"{self.logs()}",
                    pytrace=False,
                )
            time.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(
            f"--- {b.name} (pid {b.popen.pid}):\n{b.output()[-4000:]}" for b in self.started
        )


@pytest.fixture
def broker_url(redbeat_url: str) -> str:
    """Database 1 of the test server (emptied for this test by ``redbeat_url``)."""
    return redbeat_url.rsplit("/", 1)[0] + "/1"


@pytest.fixture
def beats(tmp_path: Path, broker_url: str, db_path: Path) -> Iterator[Beats]:
    (tmp_path / "sqlite_e2e_app.py").write_text(APP_MODULE)
    env = {
        **os.environ,
        "E2E_BROKER_URL": broker_url,
        "E2E_SCHEDULE_URL": f"sqlite:///{db_path}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    for name in (DISABLE_AUTOLOAD_ENV, BLOCK_ENV, "E2E_PLUGINS"):
        env.pop(name, None)
    broker = redis.Redis.from_url(broker_url)
    procs = Beats(tmp_path, env, broker)
    try:
        yield procs
    finally:
        for beat in procs.started:  # SIGTERM all first: each takes a moment to shut down
            if beat.popen.poll() is None:
                beat.popen.send_signal(signal.SIGTERM)
        for beat in procs.started:
            stop(beat.popen)
        broker.close()


def test_celery_beat_dispatches_interval_crontab_and_one_off(
    beats: Beats, make_sqlite_app: Callable[..., Celery], broker_url: str, db_path: Path
) -> None:
    # Saved before the beat starts, from this process, as a web process would.
    control = make_sqlite_app(broker_url=broker_url)
    minutely = RedBeatSchedulerEntry("cron", "e2e.cron", crontab(minute="*"), app=control)
    minutely.last_run_at = ago(61)
    minutely.save()
    once_at = datetime.now(UTC) + timedelta(seconds=2)
    RedBeatSchedulerEntry("once", "e2e.once", clocked(once_at), app=control).save()

    # Entry-point loading off: the plugin comes from the redbeat_plugins setting.
    beat = beats.start(
        "beat", **{DISABLE_AUTOLOAD_ENV: "1", "E2E_PLUGINS": "redbeat_sqlite.plugin"}
    )
    beats.wait(
        lambda: {"e2e.static", "e2e.cron", "e2e.once"} <= set(beats.messages()),
        START_TIMEOUT,
        "the static interval, the crontab and the one-off published",
    )
    RedBeatSchedulerEntry("added", "e2e.added", schedule(1.0), app=control).save()
    beats.wait(
        lambda: (
            beats.messages().count("e2e.added") >= 2 and beats.messages().count("e2e.static") >= 3
        ),
        RUN_TIMEOUT,
        "an entry added while the beat runs published twice",
    )
    assert beats.messages().count("e2e.once") == 1
    assert beats.messages().count("e2e.cron") in (1, 2)  # 2 only if a minute boundary passed
    assert beat.popen.poll() is None
    assert "redbeat_core.scheduler.RedBeatScheduler" in beat.output()
    (epoch,) = read_db(db_path, "SELECT epoch FROM lease WHERE key = ?", LOCK_KEY)[0]
    assert epoch == 1
    once = read_db(db_path, "SELECT meta, score FROM entries WHERE name = 'once'")
    assert [(json.loads(meta)["total_run_count"], score) for meta, score in once] == [(1, None)]


def test_two_celery_beats_on_one_file_exactly_one_dispatches(beats: Beats, db_path: Path) -> None:
    first, second = beats.start("first"), beats.start("second")  # plugins by entry point
    beats.wait(
        lambda: beats.messages().count("e2e.static") >= 4,
        START_TIMEOUT,
        "the static entry published four times",
    )
    leaders = [beat for beat in (first, second) if beat.dispatches()]
    assert len(leaders) == 1, beats.logs()
    leader, standby = leaders[0], next(b for b in (first, second) if b is not leaders[0])
    ((holders,),) = read_db(db_path, "SELECT COUNT(*) FROM lease WHERE token IS NOT NULL")
    assert holders == 1, beats.logs()

    # The leader stops (SIGTERM, by its pid) and releases the lease: the standby takes over.
    stop(leader.popen)
    published_by_leader = leader.dispatches()
    beats.wait(
        lambda: standby.dispatches() >= 2,
        RUN_TIMEOUT,
        "the standby took over and dispatched",
    )
    assert leader.dispatches() == published_by_leader, beats.logs()
    ((epoch,),) = read_db(db_path, "SELECT epoch FROM lease WHERE key = ?", LOCK_KEY)
    assert epoch == 2, beats.logs()
    stop(standby.popen)
    # Every message in the broker was sent by one beat or the other, never by both: one per
    # dispatch line, less any publish that the stop interrupted.
    dispatched = leader.dispatches() + standby.dispatches()
    interrupted = leader.interrupted() + standby.interrupted()
    sent = beats.messages().count("e2e.static")
    assert dispatched - interrupted <= sent <= dispatched, beats.logs()
