"""One django-celery-beat measurement, run by its own venv's interpreter.

``python djworker.py OP '{json params}'`` (the runner passes the database as ``params["db"]``).
It mirrors ``benchmarks/worker.py``'s ops for RedBeat and celery-redbeat, and imports that
module for what is shared: the publish count (Celery's ``before_task_publish`` on a
``memory://`` broker, each message dropped by ``after_task_publish``), RSS and percentiles.
Nothing inside django-celery-beat is patched: queries are counted by a Django execute wrapper
on the connection, dispatches by Celery's signal. Entries are stored with ``bulk_create``
(untimed, in a process of their own), as one shared ``IntervalSchedule`` of ``every``
seconds and one ``PeriodicTask`` per entry, whose ``last_run_at`` sets its due time.

It prints one JSON object (the last line of stdout); logs go to stderr.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import worker as common  # noqa: E402 - the path above first
from benchmarks.django_peer import djsettings  # noqa: E402

TASK = common.TASK
PUBLISHED = common.PUBLISHED
MAX_TICKS = common.MAX_TICKS


class QueryCounter:
    """A Django execute wrapper: counts every statement the connection runs."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


QUERIES = QueryCounter()


def setup(p: dict[str, Any]) -> None:
    djsettings.configure(p["db"])
    from django.db import connection

    connection.execute_wrappers.append(QUERIES)


def side_info() -> dict[str, Any]:
    from django.db import connection

    return {
        "django_celery_beat": importlib.metadata.version("django-celery-beat"),
        "django": importlib.metadata.version("django"),
        "celery": importlib.metadata.version("celery"),
        "kombu": importlib.metadata.version("kombu"),
        "python": sys.version.split()[0],
        "vendor": connection.vendor,
        "database_version": ".".join(map(str, connection.Database.sqlite_version_info))
        if connection.vendor == "sqlite"
        else f"{connection.pg_version // 10000}.{connection.pg_version % 10000}",
        "conn_max_age": djsettings.CONN_MAX_AGE,
    }


def make_app(**conf: Any) -> Any:
    """The beat's app: ``memory://`` broker, no ``celery.backend_cleanup`` entry, current (the
    scheduler's entries look the app up through ``current_app``)."""
    from celery import Celery

    app = Celery("bench")
    app.conf.update({"broker_url": "memory://", "result_expires": None, "beat_schedule": {}})
    app.conf.update(conf)

    @app.task(name=TASK, shared=False)
    def noop(*args: Any, **kwargs: Any) -> None:
        return None

    app.set_current()
    app.set_default()
    return app


def new_scheduler(app: Any) -> Any:
    from django_celery_beat.schedulers import DatabaseScheduler

    return DatabaseScheduler(app=app)


def stored() -> int:
    from django_celery_beat.models import PeriodicTask

    return int(PeriodicTask.objects.count())


def name_of(i: int) -> str:
    return common.name_of(i)


def drain(scheduler: Any, expected: int, cap: float | None = None) -> dict[str, Any]:
    """Tick until ``expected`` more publishes happened, or ``cap`` seconds passed."""
    start = len(PUBLISHED)
    q0 = QUERIES.count
    t0 = time.perf_counter()
    ticks = 0
    while len(PUBLISHED) - start < expected and ticks < MAX_TICKS:
        if cap is not None and time.perf_counter() - t0 > cap:
            break
        scheduler.tick()
        ticks += 1
    seconds = time.perf_counter() - t0
    got = len(PUBLISHED) - start
    if cap is None and got != expected:
        raise RuntimeError(f"expected {expected} dispatches, got {got} in {ticks} ticks")
    return {
        "seconds": seconds,
        "queries": QUERIES.count - q0,
        "published": got,
        "ticks": ticks,
        "complete": got == expected,
    }


# ----------------------------------------------------------------------------- operations


def op_migrate(p: dict[str, Any]) -> dict[str, Any]:
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    return {"seconds": time.perf_counter() - t0}


def op_populate(p: dict[str, Any]) -> dict[str, Any]:
    """Store entries 0..n, due times staggered over the last three quarters of one interval
    as B1's populate does for the Redis sides; entry 0 and each slice ``[first, count,
    seconds_ago]`` of ``due`` are due that many seconds ago instead (a millisecond apart, in
    index order, so they are dispatched in that order)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    n, every = int(p["n"]), float(p["every"])
    now = time.time()
    due_at: dict[int, float] = {0: now - 3.0}
    for first, count, ago in p.get("due", []):
        for k, i in enumerate(range(int(first), int(first) + int(count))):
            due_at[i] = now - float(ago) + k * 1e-3
    t0 = time.perf_counter()
    PeriodicTask.objects.all().delete()
    IntervalSchedule.objects.all().delete()
    interval = IntervalSchedule.objects.create(every=int(every), period=IntervalSchedule.SECONDS)
    batch = []
    for i in range(n + 1):
        due = due_at.get(i, now + every * (0.25 + 0.74 * i / max(n, 1)))
        batch.append(
            PeriodicTask(
                name=name_of(i),
                task=TASK,
                interval=interval,
                args=json.dumps([i]),
                kwargs="{}",
                last_run_at=datetime.fromtimestamp(due - every, tz=UTC),
                enabled=True,
            )
        )
        if len(batch) >= 5_000:
            PeriodicTask.objects.bulk_create(batch)
            batch = []
    PeriodicTask.objects.bulk_create(batch)
    return {"stored": stored(), "seconds": time.perf_counter() - t0}


def op_ticks(p: dict[str, Any]) -> dict[str, Any]:
    """B1. Start the scheduler (its first tick reads every entry), dispatch entry 0 (warm-up),
    then drain ``reps`` slices of ``due`` entries, all due 1.5 s ago (a slice's entries
    before the next slice's), then ``idle_reps`` idle ticks. django-celery-beat publishes one
    entry per ``tick()`` (Celery's heap), so a busy cycle is ``due`` ticks. ``cap``: a slice
    that takes longer is cut there and its per-entry cost is what it dispatched so far (the
    idle ticks are measured by ``op_memory``, where nothing is left due)."""
    setup(p)
    due, reps, cap = int(p["due"]), int(p["reps"]), float(p["cap"])
    gc.collect()
    base = common.rss_kib()
    app = make_app()
    t0 = time.perf_counter()
    q0 = QUERIES.count
    scheduler = new_scheduler(app)
    scheduler.tick()  # the initial read and the heap; entry 0 is due: published here
    load = {"seconds": time.perf_counter() - t0, "queries": QUERIES.count - q0}
    warm = drain(scheduler, 1 - len(PUBLISHED)) if not PUBLISHED else None
    busy = []
    for _ in range(reps):
        run = drain(scheduler, due, cap)
        busy.append(run)
        if not run["complete"]:
            break
    gc.collect()
    return {
        "load": load,
        "warm": warm,
        "busy": busy,
        "rss_before_kib": base["rss_kib"],
        **common.rss_kib(),
        "stored": stored(),
    }


def op_memory(p: dict[str, Any]) -> dict[str, Any]:
    """B5 and B1's idle tick: the beat process with N stored, after a busy cycle (entries
    1..due, due at populate) and idle ticks (``idle_reps`` of them timed), as
    ``worker.op_memory`` and ``worker.op_ticks``' idle part."""
    setup(p)
    due, idle_reps = int(p["due"]), int(p["idle_reps"])
    gc.collect()
    base = common.rss_kib()
    scheduler = new_scheduler(make_app())
    run = drain(scheduler, due + 1)  # entry 0 too
    idle = []
    for _ in range(idle_reps):
        before = len(PUBLISHED)
        q = QUERIES.count
        t = time.perf_counter()
        scheduler.tick()
        seconds = time.perf_counter() - t
        if len(PUBLISHED) != before:
            raise RuntimeError("an idle tick dispatched")
        idle.append({"seconds": seconds, "queries": QUERIES.count - q, "published": 0})
    for _ in range(3):
        scheduler.tick()
    gc.collect()
    return {
        "rss_before_kib": base["rss_kib"],
        **common.rss_kib(),
        "ticks": run["ticks"],
        "published": run["published"],
        "due": due,
        "idle": idle,
    }


def op_startup(p: dict[str, Any]) -> dict[str, Any]:
    """B2: start-up with ``s`` statics in ``beat_schedule`` (same entries as
    ``worker.op_startup``): constructing ``DatabaseScheduler``, which reads the stored schedule
    and writes each static (``update_or_create``). Cold: no rows stored (deleted, untimed);
    warm: stored by a previous start."""
    setup(p)
    from celery.schedules import schedule
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    size, reps, warm = int(p["s"]), int(p["reps"]), bool(p["warm"])
    periods = int(p.get("periods", 3600))  # distinct intervals: 60 + i % periods seconds

    def statics() -> dict[str, Any]:
        return {
            f"static-{i:06d}": {
                "task": TASK,
                "schedule": schedule(run_every=60 + i % periods),
                "args": (i,),
            }
            for i in range(size)
        }

    def clear() -> None:
        PeriodicTask.objects.all().delete()
        IntervalSchedule.objects.all().delete()

    # Warm the interpreter on a throwaway start.
    new_scheduler(make_app(beat_schedule={"w": {"task": TASK, "schedule": 60.0}}))
    clear()
    if warm:
        new_scheduler(make_app(beat_schedule=statics()))
    results = []
    for _ in range(reps):
        if not warm:
            clear()
        app = make_app(beat_schedule=statics())
        q0 = QUERIES.count
        t0 = time.perf_counter()
        scheduler = new_scheduler(app)
        seconds = time.perf_counter() - t0
        results.append(
            {
                "seconds": seconds,
                "queries": QUERIES.count - q0,
                "stored": stored(),
                "published": 0,
            }
        )
        del scheduler
    return {"reps": results}


def op_burst(p: dict[str, Any]) -> dict[str, Any]:
    """B3: entries 1..n all due at the same whole second T, set (``last_run_at`` = T - every,
    one UPDATE) before the scheduler starts: it reads them at its start, as a beat would
    after a restart, with no change to notice later. Then the beat loop of ``celery beat``
    (``Service.start``: tick, sleep the returned interval) runs until all are published.
    ``lead``: how far ahead T is; the start must be over 0.2 s before T."""
    setup(p)
    from django_celery_beat.models import PeriodicTask

    n, every = int(p["n"]), float(p["every"])
    due_at = float(math.ceil(time.time() + float(p["lead"])))
    PeriodicTask.objects.filter(name__gt=name_of(0)).update(
        last_run_at=datetime.fromtimestamp(due_at - every, tz=UTC)
    )
    scheduler = new_scheduler(make_app())
    drain(scheduler, 1)  # entry 0 (due 3 s before populate): initial read, heap, warm-up
    scheduler.tick()
    left = due_at - time.time()
    if left < 0.2:
        raise RuntimeError(f"the scheduler started {-left:.2f}s after T: raise the lead")
    start = len(PUBLISHED)
    q0 = QUERIES.count
    deadline = time.monotonic() + left + float(p.get("timeout", 600))
    ticks = 0
    while len(PUBLISHED) - start < n and time.monotonic() < deadline and ticks < 10 * MAX_TICKS:
        interval = scheduler.tick()
        ticks += 1
        if len(PUBLISHED) - start >= n:
            break
        if interval and interval > 0:
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    stamps = [t for t, _ in PUBLISHED[start:]]
    if len(stamps) != n:
        raise RuntimeError(f"burst: {len(stamps)} of {n} dispatched before the deadline")
    first, last = stamps[0], stamps[-1]
    return {
        "due_at": due_at,
        "started_before_due": left,
        "first": first,
        "last": last,
        "first_after_due": first - due_at,
        "total": last - due_at,
        "dispatch_seconds": last - first,
        "per_second": n / (last - due_at) if last > due_at else None,
        "per_second_dispatching": (n - 1) / (last - first) if last > first else None,
        "queries": QUERIES.count - q0,
        "ticks": ticks,
    }


OPS = {
    "migrate": op_migrate,
    "populate": op_populate,
    "ticks": op_ticks,
    "memory": op_memory,
    "startup": op_startup,
    "burst": op_burst,
}


def main() -> None:
    op, params = sys.argv[1], json.loads(sys.argv[2])
    if op in ("migrate", "populate"):
        setup(params)
    result = OPS[op](params)
    result["side_info"] = side_info()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
