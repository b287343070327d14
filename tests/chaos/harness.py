"""The chaos tests' machinery: persistent servers, real beat processes, the broker's record
of what was published, and the accounting of every run against the delivery mode's promise.

Everything here is real: a store server and a broker server (Valkey or Redis, on 127.0.0.1,
with ``--appendonly yes --appendfsync always`` in a temporary folder, so a restart loses
nothing that was acknowledged) and ``celery beat`` processes running :mod:`chaos_app`. Every
process is started and stopped by its own pid (SIGCONT first if it is frozen, SIGTERM, SIGKILL
after a deadline), also when a test fails.

How runs are counted (:func:`account`): every publish carries a stamp (entry, due time, run
number, see :mod:`chaos_app`) and lands in the broker's queue, which no worker consumes; at the
end each entry's stored ``total_run_count`` says how many runs were committed. A run is
identified by (entry, run number): the number is given by the commit that stores it, and both
leaders that may publish one run (at-least-once, a takeover between publish and commit) stamp
the same number, because it comes from the stored state they both claimed.

* **duplicate**: one run published by more than one ``apply_async`` (distinct task ids).
* **lost**: a committed run (number <= the stored count) that no message carries. One
  committed after the last run published before ``end`` (while the beats were stopped) is
  counted apart as *lost at stop*: an at-most-once stop can lose one (test_stop_after_commit).
* **uncommitted**: a published run number above the stored count (the run was never stored
  as run: fine under at-least-once when a beat stopped before its commit; never under
  at-most-once, which commits first).
* **stale**: a publish by a beat after another beat, with a later fencing epoch, had
  published: a leader that lost its lease published anyway. Each beat checks its lease by its
  own clock before each publish; a freeze that falls between that check and the publish
  (microseconds) still publishes late, so the soak reports these and the fencing tests check
  the pause points exactly.
* **miss**: a due time that passed without its run. Each entry's due times form a chain:
  a run due at ``d`` is stamped with ``last_run_at = max(tick time, d)`` and its next due time
  is that plus the interval. Between two consecutive published runs due at ``a < b``,
  ``floor((b - a + eps) / interval) - 1`` due times were never published (a lost run, or a tick
  late by a whole interval, which Celery's schedules collapse into one run); they sit at
  ``a + k * interval``. The same before the first run (from the due time the test stored) and
  after the last (until the test stopped the beats). A missed due time inside an *outage
  window* (see :class:`Window`, built from the driver's actions) is excused; any other fails.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redbeat_redis.testing import servers

HERE = Path(__file__).parent
LOCK_KEY = "redbeat::lock"
SCHEDULE_KEY = "redbeat::schedule"
#: The queue Celery publishes to by default; nothing consumes it.
QUEUE = "celery"
#: Every acknowledged write is on disk before the reply, and survives a SIGKILL.
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")
#: How long a beat may take to start (import Celery, connect) on a loaded 2-core machine.
START_TIMEOUT = 45.0
STOP_TIMEOUT = 15.0
#: Score rounding: the store writes due times with millisecond precision.
EPS = 0.01
#: Seconds of random actions per delivery mode. The default run takes one round of actions;
#: ``nox -s chaos`` sets several minutes.
SECONDS_ENV = "REDBEAT_CHAOS_SECONDS"
#: The RNG seed of the actions; the report prints it, and the same seed replays the sequence.
SEED_ENV = "REDBEAT_CHAOS_SEED"
DEFAULT_SECONDS = 12.0
DEFAULT_SEED = 16


def soak_seconds() -> float:
    """Seconds of actions per mode (``REDBEAT_CHAOS_SECONDS``)."""
    return float(os.environ.get(SECONDS_ENV, DEFAULT_SECONDS))


def soak_seed() -> int:
    """The actions' seed (``REDBEAT_CHAOS_SEED``)."""
    return int(os.environ.get(SEED_ENV, DEFAULT_SEED))


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; raise ``AssertionError`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.02)  # polling interval; the deadline decides


# ------------------------------------------------------------------------------ servers


def server_kind() -> str:
    """The server kind the chaos tests run on: the first of ``REDBEAT_TEST_SERVERS`` (or of
    valkey, redis) that is installed. One kind keeps the default run short; the other is
    covered by ``REDBEAT_TEST_SERVERS=redis``."""
    wanted = [k.strip() for k in os.environ.get("REDBEAT_TEST_SERVERS", "").split(",") if k]
    found = servers.find_server_binaries()
    for kind in wanted or list(servers.KINDS):
        if kind in found:
            return kind
    hints = "; ".join(servers.INSTALL_HINTS.values())
    raise servers.ServerNotFoundError(f"no server binary for the chaos tests: {hints}")


def start_persistent(kind: str) -> servers.ServerProcess:
    """A server with an append-only file fsynced at every write, on a port below Linux's
    ephemeral range (so that no outgoing connection takes it while it is down between a kill
    and its restart, which reuse the port and the folder)."""
    binary = servers.find_server_binaries()[kind]
    for attempt in range(3):
        server = servers.ServerProcess(
            kind, binary, servers.free_port(cluster=True), extra_args=PERSISTENT
        )
        try:
            return server.start()
        except servers.ServerStartError as error:
            server.stop()
            if not error.port_in_use or attempt == 2:
                raise
    raise AssertionError("unreachable")


def restart(server: servers.ServerProcess) -> None:
    """Start a killed server again on its port, from its folder (its append-only file)."""
    server.start()


# ------------------------------------------------------------------------------ beats


@dataclass
class Beat:
    """One slot of the fleet: the beat process running in it now (None while down)."""

    slot: int
    popen: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    frozen: bool = False

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


def _stop(popen: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGCONT (it may be frozen), SIGTERM, wait; SIGKILL after the deadline. By its pid."""
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGCONT)
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


class Fleet:
    """The beat processes of one test, all running :mod:`chaos_app` with the same parameters.

    Use it as a context manager: every process it ever started is stopped on exit."""

    def __init__(self, workdir: Path, params: Mapping[str, Any], size: int) -> None:
        self.workdir = workdir
        self.params = {**params, "workdir": str(workdir)}
        self.beats = [Beat(slot) for slot in range(size)]
        self.started: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "REDBEAT_CHAOS": json.dumps(self.params),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "REDBEAT_DISABLE_PLUGIN_AUTOLOAD": "1",
        }

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(self, slot: int) -> Beat:
        beat = self.beats[slot]
        assert not beat.alive(), f"beat {slot} is running"
        log = self.workdir / f"beat-{slot}-{len(beat.logs)}.log"
        with log.open("ab") as out:
            beat.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "chaos_app",
                    "beat",
                    "-S",
                    "redbeat.RedBeatScheduler",
                    "--loglevel=INFO",
                    f"--schedule={self.workdir / f'celerybeat-{slot}'}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env,
            )
        self.started.append(beat.popen)
        beat.logs.append(log)
        beat.frozen = False
        return beat

    def start_all(self) -> None:
        for beat in self.beats:
            self.start(beat.slot)

    def by_pid(self, pid: int) -> Beat | None:
        return next((b for b in self.beats if b.pid == pid and b.alive()), None)

    def signal(self, beat: Beat, sig: signal.Signals) -> None:
        """Send ``sig`` to the beat's own pid (through its Popen handle)."""
        assert beat.popen is not None
        beat.popen.send_signal(sig)
        if sig == signal.SIGSTOP:
            beat.frozen = True
        elif sig == signal.SIGCONT:
            beat.frozen = False

    def kill(self, beat: Beat) -> None:
        assert beat.popen is not None
        beat.popen.kill()
        beat.popen.wait()
        beat.frozen = False

    def terminate(self, beat: Beat) -> None:
        """SIGTERM and wait for the beat to exit (it releases the lock on the way out)."""
        assert beat.popen is not None
        beat.popen.send_signal(signal.SIGTERM)
        beat.popen.wait(timeout=STOP_TIMEOUT)

    def ready(self, beat: Beat) -> bool:
        """Whether the beat finished starting (its scheduler synced with the store)."""
        return beat.alive() and (self.workdir / "ready" / str(beat.pid)).exists()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every beat that runs has finished starting. A beat that cannot reach
        the store while it starts exits (by design: it says how to make it wait), so the
        driver breaks the store only once no beat is starting."""

        def check() -> bool:
            self.check_alive()
            return all(self.ready(b) for b in self.beats if b.popen is not None)

        try:
            wait_until(check, timeout, "every beat started")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def check_alive(self) -> None:
        """Fail with its log when a beat that should run has exited by itself."""
        for beat in self.beats:
            if beat.popen is not None and beat.popen.poll() is not None and beat.logs:
                raise AssertionError(
                    f"beat {beat.slot} (pid {beat.pid}) exited with {beat.popen.returncode}:\n"
                    + tail(beat.logs[-1])
                )

    def stop_all(self) -> None:
        for popen in self.started:  # SIGCONT + SIGTERM all first: each takes a moment
            if popen.poll() is None:
                popen.send_signal(signal.SIGCONT)
                popen.send_signal(signal.SIGTERM)
        for popen in self.started:
            _stop(popen)

    def logs(self, lines: int = 30) -> str:
        return "\n".join(
            f"--- beat {b.slot} ({log.name}):\n{tail(log, lines)}"
            for b in self.beats
            for log in b.logs
        )


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:]) or "(no output)"


def leader_pid(store: servers.ServerProcess, workdir: Path) -> int | None:
    """The pid of the beat whose token the lock key holds (None: no lock, or store down)."""
    try:
        with store.client(timeout=1.0) as client:
            token = client.get(LOCK_KEY)
    except servers.TRANSIENT_ERRORS:
        return None
    if not token:
        return None
    path = workdir / "tokens" / str(token)
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------ entries


def save_entries(store_url: str, intervals: Mapping[str, float], first_due: float) -> None:
    """Save one entry per name, every ``intervals[name]`` seconds, each first due at
    ``first_due`` (Unix seconds; its last run is stored one interval before): what a web
    process would do while the beats run."""
    from celery import Celery
    from celery.schedules import schedule

    from redbeat import RedBeatSchedulerEntry

    app = Celery("chaos-control", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_redis_url=store_url)
    try:
        for name, every in intervals.items():
            entry = RedBeatSchedulerEntry(name, "chaos.run", schedule(every), args=[name], app=app)
            entry.last_run_at = datetime.fromtimestamp(first_due - every, UTC)
            entry.save()
    finally:
        runtime = getattr(app, "redbeat_runtime", None)
        if runtime is not None:
            runtime.close()
        app.close()


def stored_counts(store: servers.ServerProcess, names: Iterable[str]) -> dict[str, int]:
    """Each entry's stored ``total_run_count``: how many runs were committed."""
    counts = {}
    with store.client() as client:
        for name in names:
            raw = client.hget(f"redbeat:{name}", "meta")
            counts[name] = int(json.loads(raw)["total_run_count"]) if raw else 0
    return counts


# ------------------------------------------------------------------------------ the record


@dataclass(frozen=True)
class Stamp:
    """One message in the broker's queue, as the beat stamped it."""

    entry: str
    due: float
    run: int
    pid: int
    epoch: int
    at: float
    task_id: str


def read_stamps(broker: servers.ServerProcess) -> list[Stamp]:
    """Every message published to the broker's queue, oldest first."""
    with broker.client() as client:
        raw = client.lrange(QUEUE, 0, -1)
    stamps = []
    for item in reversed(raw):  # kombu LPUSHes: the oldest is last
        headers = json.loads(item)["headers"]
        s = headers.get("chaos")
        if s is None:
            raise AssertionError(f"a message without a stamp was published: {headers}")
        stamps.append(
            Stamp(
                s["entry"],
                float(s["due"]),
                int(s["run"]),
                s["pid"],
                s["epoch"],
                s["at"],
                headers["id"],
            )
        )
    return stamps


@dataclass(frozen=True)
class Window:
    """A stretch of time in which a due time may pass without its run, and why: the promise
    is only that the schedule goes on after an outage, not that it runs during one."""

    start: float
    end: float
    cause: str

    def covers(self, moment: float) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True)
class Miss:
    entry: str
    due: float
    why: str


@dataclass
class Tally:
    """The counts of one run of the fleet, and the failures behind them."""

    runs: int = 0
    publishes: int = 0
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    lost: list[tuple[str, int]] = field(default_factory=list)
    #: Lost runs committed after the last run published before the end (while stopping).
    lost_at_stop: list[tuple[str, int]] = field(default_factory=list)
    uncommitted: list[tuple[str, int]] = field(default_factory=list)
    #: Runs whose messages disagree on the due time (one run number for two due times).
    conflicts: list[tuple[str, int]] = field(default_factory=list)
    #: Messages sent twice by one publish (kombu retrying a publish whose reply was lost).
    resent: int = 0
    misses: list[Miss] = field(default_factory=list)
    #: Due times that passed without their run inside an outage window.
    excused: int = 0
    #: Runs due outside every window (published: the ones the miss check covered).
    checked: int = 0
    #: Publishes by a beat after a beat with a later fencing epoch had published: a leader
    #: that lost its lease and published anyway (reported; see :func:`account`).
    stale: list[Stamp] = field(default_factory=list)
    #: The latest first publish of a run due outside every window, seconds after its due time.
    max_lateness: float = 0.0

    def summary(self) -> str:
        return (
            f"runs={self.runs} publishes={self.publishes} duplicates={len(self.duplicates)} "
            f"lost={len(self.lost)}+{len(self.lost_at_stop)} at stop "
            f"uncommitted={len(self.uncommitted)} "
            f"conflicts={len(self.conflicts)} resent={self.resent} misses={len(self.misses)} "
            f"excused={self.excused} checked={self.checked} stale={len(self.stale)} "
            f"max_lateness={self.max_lateness:.3f}s"
        )


def account(
    stamps: Sequence[Stamp],
    counts: Mapping[str, int],
    intervals: Mapping[str, float],
    windows: Sequence[Window],
    first_due: float,
    end: float,
) -> Tally:
    """Count every run against the promises (see the module's docstring).

    :param stamps: every message in the broker's queue.
    :param counts: each entry's stored ``total_run_count`` at the end.
    :param intervals: each entry's interval, seconds.
    :param windows: outage and takeover windows, in which a missed due time is excused.
    :param first_due: the due time every entry was saved with.
    :param end: due times after this are not checked (the beats were being stopped).
    """
    tally = Tally(runs=sum(counts.values()))
    by_run: dict[tuple[str, int], list[Stamp]] = defaultdict(list)
    for stamp in stamps:
        by_run[stamp.entry, stamp.run].append(stamp)
    ids = Counter(stamp.task_id for stamp in stamps)
    tally.resent = sum(n - 1 for n in ids.values())
    tally.publishes = len(ids)

    def excused(moment: float) -> bool:
        return any(w.covers(moment) for w in windows)

    newest = 0
    for stamp in sorted(stamps, key=lambda s: s.at):
        if stamp.epoch < newest:
            tally.stale.append(stamp)
        newest = max(newest, stamp.epoch)

    for name, every in intervals.items():
        committed = counts.get(name, 0)
        published: list[tuple[float, float]] = []  # (due, first publish), in run order
        for number in sorted(n for e, n in by_run if e == name):
            messages = by_run[name, number]
            if len({s.task_id for s in messages}) > 1:
                tally.duplicates.append((name, number))
            if len({s.due for s in messages}) > 1:
                tally.conflicts.append((name, number))
            if number > committed:
                tally.uncommitted.append((name, number))
            # Several due times for one run: the last is the one its commit stored.
            published.append((max(s.due for s in messages), min(s.at for s in messages)))
        numbers = {n for e, n in by_run if e == name}
        # Runs numbered after the last one published before ``end`` were committed while the
        # beats were being stopped: counted apart (see test_stop_after_commit.py).
        before_end = max(
            (n for (e, n), ss in by_run.items() if e == name and min(s.at for s in ss) <= end),
            default=0,
        )
        for n in range(1, committed + 1):
            if n not in numbers:
                (tally.lost if n <= before_end else tally.lost_at_stop).append((name, n))

        def missed(due: float, why: str, name: str = name) -> None:
            if due > end:
                return
            if excused(due):
                tally.excused += 1
            else:
                tally.misses.append(Miss(name, due, why))

        previous = first_due - every  # as if a run had been due one interval before
        for due, at in published:
            gap = math.floor((due - previous + EPS) / every) - 1
            for k in range(1, gap + 1):
                missed(previous + k * every, "never published")
            if not excused(due):
                tally.checked += 1
                tally.max_lateness = max(tally.max_lateness, at - due)
            previous = due
        for k in range(1, math.floor((end - previous) / every) + 1):
            missed(previous + k * every, "not published before the end")
    return tally


# ------------------------------------------------------------------------------ the run


@dataclass
class Setup:
    """A store, a broker and a fleet of beats on them; see :func:`chaos_setup`."""

    store: servers.ServerProcess
    broker: servers.ServerProcess
    fleet: Fleet
    workdir: Path

    def leader(self) -> Beat | None:
        pid = leader_pid(self.store, self.workdir)
        return None if pid is None else self.fleet.by_pid(pid)

    def wait_for_leader(self, timeout: float = START_TIMEOUT) -> Beat:
        found: list[Beat] = []

        def check() -> bool:
            self.fleet.check_alive()
            beat = self.leader()
            if beat is not None:
                found.append(beat)
            return beat is not None

        try:
            wait_until(check, timeout, "a beat holds the lock")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.fleet.logs()}") from None
        return found[-1]


@contextmanager
def chaos_setup(
    workdir: Path, *, kind: str, delivery: str, lock_timeout: float, beats: int
) -> Iterator[Setup]:
    """Start a persistent store and broker and ``beats`` beat processes (not started yet:
    call ``setup.fleet.start_all()``); stop every process on exit, by its pid."""
    with ExitStack() as stack:
        store = start_persistent(kind)
        stack.callback(store.stop)
        broker = start_persistent(kind)
        stack.callback(broker.stop)
        params = {
            "store": store.url,
            "broker": broker.url.rsplit("/", 1)[0] + "/0",
            "delivery": delivery,
            "lock_timeout": lock_timeout,
        }
        fleet = stack.enter_context(Fleet(workdir, params, beats))
        yield Setup(store, broker, fleet, workdir)


# ------------------------------------------------------------------------------ the driver

#: What the driver does to the fleet, one round at a time, each round in a random order.
ACTIONS = ("kill_leader", "freeze_leader", "term_beat", "restart_store", "broker_outage")


@dataclass
class Driver:
    """Applies random actions from a seeded RNG to a running :class:`Setup`, and records
    each action with the window in which its outage may make due times pass unpublished.

    The windows are the design's promises, not measurements: a takeover within the lease
    plus one standby poll after the leader stopped renewing it (``lock_timeout + poll``), a
    graceful stop handing over within a poll, the store's and broker's clients back at the
    next tick after the server is, at-least-once retrying a failed publish after a backoff
    that doubles from 1 s (so within the outage's length plus a second after it ends). Each
    gets ``slack`` seconds for a loaded machine, and starts half a second before the action
    (a run due just before it may be in flight).
    """

    setup: Setup
    rng: Any  # random.Random
    lock_timeout: float
    poll: float = 1.0
    slack: float = 1.5
    windows: list[Window] = field(default_factory=list)
    actions: list[tuple[float, str]] = field(default_factory=list)

    def run(self, seconds: float, *, min_actions: int = 0) -> None:
        """Act until ``seconds`` have passed and ``min_actions`` were taken (the last action
        is finished first)."""
        deadline = time.monotonic() + seconds
        pending: list[str] = []
        while time.monotonic() < deadline or len(self.actions) < min_actions:
            if not pending:
                pending = list(ACTIONS)
                self.rng.shuffle(pending)
            self.setup.fleet.wait_ready()
            getattr(self, pending.pop())()
            self.setup.fleet.check_alive()
            time.sleep(self.rng.uniform(0.5, 4.0))  # the scenario: quiet time between actions

    def _record(self, start: float, end: float, what: str) -> None:
        self.actions.append((start, what))
        if end > start:
            self.windows.append(Window(start - 0.5, end + self.slack, what))

    def kill_leader(self) -> None:
        """SIGKILL the leader; a standby takes over once its lease lapses. Restart it."""
        beat = self.setup.wait_for_leader()
        down = self.rng.uniform(0.3, 1.5)
        started = time.time()
        self.setup.fleet.kill(beat)
        self._record(started, started + self.lock_timeout + self.poll, f"SIGKILL leader {beat.pid}")
        time.sleep(down)
        self.setup.fleet.start(beat.slot)

    def freeze_leader(self) -> None:
        """SIGSTOP the leader for a while (a GC pause, a stalled VM), then SIGCONT."""
        beat = self.setup.wait_for_leader()
        frozen = self.rng.uniform(0.5, 2 * self.lock_timeout)
        started = time.time()
        self.setup.fleet.signal(beat, signal.SIGSTOP)
        try:
            time.sleep(frozen)
        finally:
            self.setup.fleet.signal(beat, signal.SIGCONT)
        end = started + min(frozen, self.lock_timeout) + self.poll
        self._record(started, end, f"SIGSTOP leader {beat.pid} for {frozen:.1f}s")

    def term_beat(self) -> None:
        """SIGTERM any beat and restart it; a leader releases the lock on its way out."""
        beats = self.setup.fleet.beats
        first = self.rng.randrange(len(beats))
        down = self.rng.uniform(0.3, 1.5)
        beat = next(
            beats[(first + i) % len(beats)]
            for i in range(len(beats))
            if beats[(first + i) % len(beats)].alive()
        )
        leader = self.setup.leader()
        was_leader = leader is None or leader.slot == beat.slot
        started = time.time()
        pid = beat.pid
        self.setup.fleet.terminate(beat)
        stopped = time.time()
        role = "leader" if was_leader else "standby"
        self._record(
            started, stopped + self.poll if was_leader else started, f"SIGTERM {role} {pid}"
        )
        time.sleep(down)
        self.setup.fleet.start(beat.slot)

    def restart_store(self) -> None:
        """SIGKILL the store and start it again on its port; nothing acknowledged is lost."""
        down = self.rng.uniform(0.3, 2.5)
        started = time.time()
        self.setup.store.kill()
        time.sleep(down)
        restart(self.setup.store)
        # Back: the leader's next tick (within a poll) reconnects; had the lease lapsed
        # meanwhile, it steps down and a beat takes the lock at the poll after.
        end = time.time() + 2 * self.poll
        self._record(started, end, f"store down {down:.1f}s")

    def broker_outage(self) -> None:
        """SIGKILL the broker and start it again: publishes fail meanwhile."""
        down = self.rng.uniform(0.5, 2.5)
        started = time.time()
        self.setup.broker.kill()
        time.sleep(down)
        restart(self.setup.broker)
        back = time.time()
        # at-least-once retries a failed publish after a backoff that doubles from 1 s: the
        # retry after the broker is back comes within the outage's length plus a second.
        end = back + (back - started) + 1 + self.poll
        self._record(started, end, f"broker down {down:.1f}s")

    def describe(self, origin: float) -> str:
        return ", ".join(f"{at - origin:.1f}s {what}" for at, what in self.actions)
