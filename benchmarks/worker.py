"""One benchmark measurement, run by either side's interpreter.

This file is executed as a script (``python worker.py OP '{json params}'``) by the workspace's
interpreter (RedBeat) and by the celery-redbeat 2.4.2 venv's interpreter: both own the import
name ``redbeat``, so they never share a process. It uses only the API the two have in common
(``redbeat.RedBeatScheduler``, ``redbeat.RedBeatSchedulerEntry``,
``redbeat.schedulers.acquire_distributed_beat_lock``, ``app.redbeat_redis``), plus Celery,
kombu and redis-py, so both sides are measured by the same code (the ops only RedBeat runs,
the profile and B7's scheduling policies, use its own API too). Nothing inside either
scheduler is patched: round trips are counted by a redis-py ``Connection`` subclass on the
client assigned to ``app.redbeat_redis`` (both schedulers honour it), commands by the server's
``INFO commandstats``, dispatches by Celery's ``before_task_publish`` signal on a ``memory://``
broker (each message is dropped from it by ``after_task_publish``: a real broker takes it out of
the beat process). In the real-broker mode (``broker`` in the parameters: a ``redis://`` URL)
the messages go to that server instead, where the runner times and counts them.

It prints one JSON object (the last line of stdout); logs go to stderr.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import math
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import redis
from celery import Celery
from celery.schedules import schedule
from celery.signals import after_task_publish, before_task_publish

PREFIX = "redbeat:"
SCHEDULE_KEY = "redbeat::schedule"
LOCK_KEY = "redbeat::lock"
TASK = "bench.noop"
#: Interval of the burst floor's entries (never due by themselves: they are published directly).
EVERY = 3600.0
#: Upper bound on the ticks any loop here runs (loops are bounded, never "until it works").
MAX_TICKS = 100_000

#: (time.time(), task name) of every publish in this process.
PUBLISHED: list[tuple[float, str]] = []
#: The Celery broker of every app made here (``url``: set from the parameters' ``broker``).
BROKER = {"url": "memory://"}


def _record_publish(sender: Any = None, headers: Any = None, **_: Any) -> None:
    PUBLISHED.append((time.time(), headers.get("task", sender) if headers else sender))


def _drop_published(**_: Any) -> None:
    if BROKER["url"].startswith("memory://"):
        purge_broker()


before_task_publish.connect(_record_publish, weak=False)
#: A real broker takes the message away; the ``memory://`` one keeps it in this process, where
#: it would count as the beat's memory and make its garbage collector slower as the run goes
#: on. Dropped right after each publish, on both sides alike.
after_task_publish.connect(_drop_published, weak=False)


class CountingConnection(redis.Connection):
    """A real connection that counts what it sends: one send = one round trip (a pipeline is
    one send)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


# ----------------------------------------------------------------------------- helpers


def side_info() -> dict[str, Any]:
    """Which ``redbeat`` this interpreter imports, so a mix-up is caught, not measured."""
    import redbeat

    try:
        theirs = importlib.metadata.version("celery-redbeat")
    except importlib.metadata.PackageNotFoundError:
        theirs = None
    try:
        import redbeat_core  # noqa: F401

        ours = True
    except ImportError:
        ours = False
    return {
        "redbeat_file": redbeat.__file__,
        "celery_redbeat_version": theirs,
        "is_ours": ours,
        "python": sys.version.split()[0],
        "celery": importlib.metadata.version("celery"),
        "kombu": importlib.metadata.version("kombu"),
        "redis_py": importlib.metadata.version("redis"),
    }


def check_side(expected: str) -> dict[str, Any]:
    info = side_info()
    if expected == "ours" and not info["is_ours"]:
        raise SystemExit(f"expected RedBeat, got {info}")
    if expected == "theirs" and (info["is_ours"] or info["celery_redbeat_version"] != "2.4.2"):
        raise SystemExit(f"expected celery-redbeat 2.4.2, got {info}")
    return info


def make_app(url: str, **conf: Any) -> Celery:
    app = Celery("bench", set_as_current=False)
    settings: dict[str, Any] = {
        "broker_url": BROKER["url"],
        "redbeat_redis_url": url,
        # No celery.backend_cleanup entry on either side: only the benchmark's entries exist.
        "result_expires": None,
        "beat_schedule": {},
    }
    app.conf.update({**settings, **conf})

    @app.task(name=TASK, shared=False)
    def noop(*args: Any, **kwargs: Any) -> None:
        return None

    return app


def counting_client(url: str) -> Any:
    client = redis.Redis.from_url(url, decode_responses=True, connection_class=CountingConnection)
    client.ping()  # connect (and send redis-py's handshake) outside any measurement
    return client


def admin_client(url: str) -> Any:
    return redis.Redis.from_url(url, decode_responses=True)


def server_commands(admin: Any) -> int:
    """Commands the server ran since the last CONFIG RESETSTAT (scripts' commands included),
    minus the admin connection's own INFO/CONFIG."""
    stats = admin.info("commandstats")
    return sum(
        int(v["calls"])
        for k, v in stats.items()
        if not k.startswith(("cmdstat_info", "cmdstat_config"))
    )


def purge_broker() -> int:
    """Drop the messages published so far. The ``memory://`` broker keeps them in this
    process (class-level queues of kombu's memory transport), which would count as the
    beat's memory. Harness clean-up between measurements, on both sides alike."""
    from kombu.transport.memory import Channel

    dropped = 0
    for queue in list(Channel.queues.values()):
        with queue.mutex:
            dropped += len(queue.queue)
            queue.queue.clear()
    return dropped


def rss_kib() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return {"rss_kib": out.get("VmRSS", 0), "hwm_kib": out.get("VmHWM", 0)}


def new_scheduler(app: Celery) -> Any:
    from redbeat import RedBeatScheduler

    return RedBeatScheduler(app=app)


def acquire(scheduler: Any) -> None:
    """Take the beat lock the way ``celery beat`` does at start-up (the ``beat_init`` handler
    both projects ship under this name)."""
    from redbeat.schedulers import acquire_distributed_beat_lock

    acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))


def leader(url: str, **conf: Any) -> tuple[Any, Any]:
    """An admin client for ``url`` and a scheduler holding the beat lock, on an app whose
    RedBeat client counts round trips (and ``conf``'s settings): (admin, scheduler)."""
    app = make_app(url, **conf)
    app.redbeat_redis = counting_client(url)
    admin = admin_client(url)
    scheduler = new_scheduler(app)
    acquire(scheduler)
    return admin, scheduler


def name_of(i: int) -> str:
    return f"e{i:07d}"


def key_of(i: int) -> str:
    return PREFIX + name_of(i)


def dt_json(moment: float) -> dict[str, Any]:
    """A datetime in celery-redbeat's stored form (both projects read it)."""
    d = datetime.fromtimestamp(moment, tz=UTC)
    return {
        "__type__": "datetime",
        "year": d.year,
        "month": d.month,
        "day": d.day,
        "hour": d.hour,
        "minute": d.minute,
        "second": d.second,
        "microsecond": d.microsecond,
        "timezone": "UTC",
    }


def definition_json(i: int, every: float) -> str:
    return json.dumps(
        {
            "name": name_of(i),
            "task": TASK,
            "args": [i],
            "kwargs": {},
            "options": {},
            "schedule": {"__type__": "interval", "every": every, "relative": False},
            "enabled": True,
        }
    )


def meta_json(last_run_at: float, count: int = 0) -> str:
    return json.dumps({"last_run_at": dt_json(last_run_at), "total_run_count": count})


def make_due(admin: Any, indexes: Any, every: float) -> None:
    """Make entries due now, as if their phase had come round: last run one interval ago (and
    a bit), score in the past by more than a second (celery-redbeat reads whole seconds).
    Untimed set-up, on the admin connection."""
    now = time.time()
    pipe = admin.pipeline(transaction=False)
    for i in indexes:
        pipe.hset(key_of(i), "meta", meta_json(now - every - 1.5, 1))
        pipe.zadd(SCHEDULE_KEY, {key_of(i): now - 1.5})
    pipe.execute()


def drain(scheduler: Any, expected: int, max_ticks: int = 1000) -> int:
    """Tick until ``expected`` more publishes happened (a busy tick of ours hands the rest of a
    full batch to the next tick at once). Returns the number of ticks."""
    start = len(PUBLISHED)
    ticks = 0
    while len(PUBLISHED) - start < expected and ticks < max_ticks:
        scheduler.tick()
        ticks += 1
    got = len(PUBLISHED) - start
    if got != expected:
        raise RuntimeError(f"expected {expected} dispatches, got {got} in {ticks} ticks")
    return ticks


def idle_tick(scheduler: Any) -> None:
    scheduler.tick()


def measured(admin: Any, run: Any) -> dict[str, Any]:
    """Time ``run()`` and count its round trips, server commands and publishes."""
    admin.config_resetstat()
    before_pub = len(PUBLISHED)
    before_sent = CountingConnection.sent
    t0 = time.perf_counter()
    extra = run()
    seconds = time.perf_counter() - t0
    out = {
        "seconds": seconds,
        "round_trips": CountingConnection.sent - before_sent,
        "commands": server_commands(admin),
        "published": len(PUBLISHED) - before_pub,
    }
    if extra is not None:
        out["ticks"] = extra
    return out


# ----------------------------------------------------------------------------- operations


def op_populate(p: dict[str, Any]) -> dict[str, Any]:
    """Store entries 0..n (entry 0 is the warm-up entry) for the tick and burst cases.

    Due times are staggered over the last three quarters of one interval (``every``), so that
    none comes due by itself while a slow side still ticks (celery-redbeat's ticks take
    seconds in the phases variant); each entry's ``last_run_at`` is one interval before its
    due time (the phase). ``scores``:

    * ``due``: the true due time, what either beat writes after it ran the entry itself
      (steady state);
    * ``own``: what this side's ``RedBeatSchedulerEntry(..., last_run_at=...).score`` (the
      value its ``save()`` writes) says for that entry, computed by this side's own code.
    """
    n, every, scores = int(p["n"]), float(p["every"]), p.get("scores", "due")
    admin = admin_client(p["url"])
    admin.flushall()
    app = make_app(p["url"])
    entry_cls = None
    if scores == "own":
        from redbeat import RedBeatSchedulerEntry as entry_cls
    now = time.time()
    t0 = time.perf_counter()
    batch = 20_000
    for start in range(0, n + 1, batch):
        pipe = admin.pipeline(transaction=False)
        for i in range(start, min(n + 1, start + batch)):
            due = now + every * (0.25 + 0.74 * i / max(n, 1))
            last = due - every
            score = due
            if entry_cls is not None:
                entry = entry_cls(
                    name_of(i),
                    TASK,
                    schedule(run_every=every),
                    args=[i],
                    app=app,
                    last_run_at=datetime.fromtimestamp(last, tz=UTC),
                )
                score = entry.score
            pipe.hset(
                key_of(i),
                mapping={"definition": definition_json(i, every), "meta": meta_json(last)},
            )
            pipe.zadd(SCHEDULE_KEY, {key_of(i): score})
        pipe.execute()
    stored_due_now = admin.zcount(SCHEDULE_KEY, 0, time.time())
    return {
        "stored": admin.zcard(SCHEDULE_KEY),
        "scored_due_now": stored_due_now,
        "seconds": time.perf_counter() - t0,
        "used_memory": admin.info("memory")["used_memory"],
    }


def op_ticks(p: dict[str, Any]) -> dict[str, Any]:
    """Idle ticks, then busy ticks with ``due`` entries due each (a fresh slice each time)."""
    n, every, due = int(p["n"]), float(p["every"]), int(p["due"])
    reps, idle_reps = int(p["reps"]), int(p["idle_reps"])
    if 1 + reps * due > n:
        raise ValueError(f"{reps} slices of {due} do not fit in {n} entries")
    gc.collect()
    base = rss_kib()
    admin, scheduler = leader(p["url"])
    # Warm-up: scripts loaded, producer connected, lock held, one dispatch done.
    make_due(admin, [0], every)
    drain(scheduler, 1)
    scheduler.tick()

    idle = []
    for _ in range(idle_reps):
        result = measured(admin, lambda: idle_tick(scheduler))
        if result["published"]:
            raise RuntimeError(f"idle tick dispatched {result['published']}")
        idle.append(result)
    busy = []
    for r in range(reps):
        make_due(admin, range(1 + r * due, 1 + (r + 1) * due), every)
        result = measured(admin, lambda: drain(scheduler, due))
        busy.append(result)
    gc.collect()
    return {
        "idle": idle,
        "busy": busy,
        "rss_before_kib": base["rss_kib"],
        **rss_kib(),
        "stored": admin.zcard(SCHEDULE_KEY),
    }


def op_memory(p: dict[str, Any]) -> dict[str, Any]:
    """B5: the beat process's memory with N entries stored, after idle ticks and a busy cycle
    (``due`` entries). Each message is dropped from the in-process ``memory://`` broker right
    after it is published, so only the scheduler's own memory remains. Untimed."""
    n, every, due, first = int(p["n"]), float(p["every"]), int(p["due"]), int(p["first"])
    if first + due > n + 1:
        raise ValueError(f"slice {first}..{first + due} does not fit in {n} entries")
    gc.collect()
    base = rss_kib()
    admin, scheduler = leader(p["url"])
    for _ in range(3):
        idle_tick(scheduler)
    make_due(admin, range(first, first + due), every)
    ticks = drain(scheduler, due)
    for _ in range(3):
        idle_tick(scheduler)
    gc.collect()
    return {"rss_before_kib": base["rss_kib"], **rss_kib(), "ticks": ticks, "due": due}


def op_profile(p: dict[str, Any]) -> dict[str, Any]:
    """cProfile of busy ticks (``due`` entries each), returned as raw pstats rows."""
    import cProfile
    import pstats

    n, every, due, reps = int(p["n"]), float(p["every"]), int(p["due"]), int(p["reps"])
    admin, scheduler = leader(p["url"])
    app = scheduler.app
    make_due(admin, [0], every)
    drain(scheduler, 1)
    profiler = cProfile.Profile()
    wall = []
    for r in range(reps):
        make_due(admin, range(1 + r * due, 1 + (r + 1) * due), every)
        t0 = time.perf_counter()
        profiler.enable()
        drain(scheduler, due)
        profiler.disable()
        wall.append(time.perf_counter() - t0)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {"file": filename, "line": line, "func": func, "ncalls": nc, "tt": tt, "ct": ct}
        )
    rows.sort(key=lambda r: r["tt"], reverse=True)
    first = 1 + reps * due
    parts = breakdown(app, admin, scheduler, range(first, first + due), every)
    return {
        "rows": rows[:400],
        "wall": wall,
        "reps": reps,
        "due": due,
        "n": n,
        "breakdown": parts,
    }


def breakdown(app: Any, admin: Any, scheduler: Any, indexes: range, every: float) -> list[Any]:
    """The steps of our busy tick timed one by one without a profiler (RedBeat's own internals:
    this is a profile of our code, not a comparison). Seconds for the whole slice per step."""
    from redbeat_core import records
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.typing import EntryUpdate

    runtime = scheduler._runtime
    codec = runtime.codec
    fence = scheduler.lock.fence
    make_due(admin, indexes, every)
    steps: list[tuple[str, float]] = []

    def step(label: str, run: Any, repeat: int = 1) -> Any:
        """Time ``run``; a step without side effects runs ``repeat`` times and keeps the best
        (the first pass also pays one-off costs such as cattrs building its functions)."""
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - t0)
        steps.append((label, best))
        return result

    claim = step(
        "claim (Lua, 1 round trip)",
        lambda: runtime.store.claim_due(fence, time.time(), len(indexes)),
    )
    stored = claim.entries
    if len(stored) != len(indexes):
        raise RuntimeError(f"claimed {len(stored)} of {len(indexes)}")
    step(
        "  json.loads only (definition + meta)",
        lambda: [(json.loads(e.definition), json.loads(e.meta)) for e in stored],
        repeat=3,
    )
    step(
        "  codec.decode_definition",
        lambda: [codec.decode_definition(e.definition, name=e.name) for e in stored],
        repeat=3,
    )
    step(
        "  codec.decode_meta",
        lambda: [codec.decode_meta(e.meta, name=e.name) for e in stored],
        repeat=3,
    )
    entries = step(
        "decode: from_stored (codec + entry object)",
        lambda: [RedBeatSchedulerEntry.from_stored(e, app=app, runtime=runtime) for e in stored],
        repeat=3,
    )
    answers = step(
        "is_due (Celery schedule maths)", lambda: [e.is_due() for e in entries], repeat=3
    )

    def advance(entry: Any, next_in: float) -> Any:
        # What planning.settle does per run (its signature is internal and may change).
        ran_at = entry.default_now()
        stamped = entry.with_run(ran_at)
        meta = records.encode_meta(codec, stamped.last_run_at, stamped.total_run_count)
        return EntryUpdate(entry.name, meta, entry.score_after_run(next_in, ran_at=ran_at))

    updates = step(
        "settle: stamp the run, next score, encode meta",
        lambda: [advance(e, next_in) for e, (_, next_in) in zip(entries, answers, strict=True)],
    )
    step("  app.now() alone, once per entry", lambda: [app.now() for _ in stored], repeat=3)
    producer = scheduler.producer
    step(
        "dispatch: Scheduler.apply_async (Celery + kombu)",
        lambda: [scheduler.apply_async(e, producer=producer, advance=False) for e in entries],
    )
    step(
        "commit (Lua, 1 round trip)",
        lambda: runtime.store.commit(scheduler.lock.fence, updates, []),
    )
    return steps


def op_startup(p: dict[str, Any]) -> dict[str, Any]:
    """Start-up with ``s`` static entries in ``beat_schedule``: constructing the scheduler (which
    syncs the statics) and taking the lock. Cold: empty server; warm: the statics are already
    stored by a previous start."""
    size, reps, warm = int(p["s"]), int(p["reps"]), bool(p["warm"])
    admin = admin_client(p["url"])
    client = counting_client(p["url"])

    def statics() -> dict[str, Any]:
        return {
            f"static-{i:06d}": {
                "task": TASK,
                "schedule": schedule(run_every=60 + i % 3600),
                "args": (i,),
            }
            for i in range(size)
        }

    def start() -> Any:
        app = make_app(p["url"], beat_schedule=statics())
        app.redbeat_redis = client
        return app

    def release() -> None:
        # Untimed; not scheduler.close(), which may also close the client (ours does).
        admin.delete(LOCK_KEY)

    # Warm the interpreter (lazy imports, plugin loading, converters) on a throwaway start.
    app = make_app(p["url"], beat_schedule={"w": {"task": TASK, "schedule": 60.0}})
    app.redbeat_redis = client
    acquire(new_scheduler(app))
    release()
    admin.flushall()
    if warm:
        app = start()
        acquire(new_scheduler(app))
        release()
    results = []
    for _ in range(reps):
        if not warm:
            admin.flushall()
        app = start()
        holder: list[Any] = []

        def run(app: Any = app, holder: list[Any] = holder) -> None:
            scheduler = new_scheduler(app)
            acquire(scheduler)
            holder.append(scheduler)

        result = measured(admin, run)
        result["lock_held"] = admin.get(LOCK_KEY) is not None
        result["stored"] = admin.zcard(SCHEDULE_KEY)
        results.append(result)
        release()
        del holder[:]
    return {"reps": results}


def op_burst(p: dict[str, Any]) -> dict[str, Any]:
    """Entries 1..n all due at the same whole second T; the beat loop of ``celery beat``
    (``Service.start``: tick, sleep the returned interval) runs until all are published."""
    n, every = int(p["n"]), float(p["every"])
    # ``conf``: settings for an experiment (prepare_ahead, batch sizes); none in the report.
    admin, scheduler = leader(p["url"], **p.get("conf", {}))
    make_due(admin, [0], every)
    drain(scheduler, 1)
    scheduler.tick()
    # All n entries due at T, phase = one interval.
    due_at = float(math.ceil(time.time() + float(p.get("lead", 1.5))))
    pipe = admin.pipeline(transaction=False)
    for i in range(1, n + 1):
        pipe.hset(key_of(i), "meta", meta_json(due_at - every, 1))
        pipe.zadd(SCHEDULE_KEY, {key_of(i): due_at})
    pipe.execute()
    start = len(PUBLISHED)
    sent0 = CountingConnection.sent
    deadline = time.monotonic() + float(p.get("timeout", 300))
    ticks = 0
    while len(PUBLISHED) - start < n and time.monotonic() < deadline and ticks < MAX_TICKS:
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
        "first": first,
        "last": last,
        "first_after_due": first - due_at,
        "total": last - due_at,
        "dispatch_seconds": last - first,
        "per_second": n / (last - due_at) if last > due_at else None,
        "per_second_dispatching": (n - 1) / (last - first) if last > first else None,
        "round_trips": CountingConnection.sent - sent0,
        "ticks": ticks,
        "lock_held_after": admin.get(LOCK_KEY) is not None,
    }


def op_hook_cost(p: dict[str, Any]) -> dict[str, Any]:
    """Busy ticks (RedBeat only) with third-party plugin autoload on (so RedBeat's Prometheus
    plugin, installed in the workspace, is loaded) or off (no plugin implements an observer)."""
    if not p["autoload"]:
        os.environ["REDBEAT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    from redbeat_core.plugins import PluginManager

    plugins = sorted(name for name, _ in PluginManager.load().pm.list_name_plugin())
    return {**op_ticks(p), "plugins": plugins}


def in_batches(producer: Any, publish: Any, count: int, batch: int) -> None:
    """``publish(i)`` for ``i`` in ``range(count)``: one by one when ``batch`` is 1, else
    inside kombu's ``producer.batch()``, a new batch every ``batch`` publishes, sent at its
    end: the way RedBeat's dispatch groups a tick's runs (``redbeat_publish_batch``), so that
    "Celery alone, batched" is the floor of a batching scheduler."""
    if batch <= 1:
        for i in range(count):
            publish(i)
        return
    for start in range(0, count, batch):
        with producer.batch(max_size=batch * 8):
            for i in range(start, min(count, start + batch)):
                publish(i)


def op_publish_floor(p: dict[str, Any]) -> dict[str, Any]:
    """B4's floor, with no scheduler at all: at every whole second, ``n`` ``apply_async`` calls
    through one producer, as a beat publishes ``n`` entries due at the same instant (``batch``
    > 1: inside ``producer.batch()``, see :func:`in_batches`). The lateness of each publish
    here is what Celery's publishing alone costs on this machine.
    Start-up objects are frozen from the garbage collector first, as RedBeat's beat does, and
    each publish is also written to a line-buffered file, as the beats' ``beat_app`` records
    them (a write per publish, which the beats pay too)."""
    n, seconds, warmup = int(p["n"]), float(p["seconds"]), float(p["warmup"])
    batch = int(p.get("batch", 1))
    app = make_app(p["url"])
    task = app.tasks[TASK]
    stamps: list[tuple[float, int]] = []
    log = tempfile.TemporaryFile("w", buffering=1)  # noqa: SIM115 - closed below

    def record(body: Any = None, **_: Any) -> None:
        index = body[0][0] if body and body[0] else -1
        stamp = time.time()
        log.write(f"{stamp:.6f} {index}\n")
        stamps.append((stamp, index))

    before_task_publish.connect(record, weak=False)
    start = time.time()
    with log, app.producer_or_acquire() as producer:
        task.apply_async((-1,), producer=producer)  # connect and declare outside the window
        gc.collect()
        gc.freeze()
        for _ in range(int(warmup + seconds) + 1):
            second = math.ceil(time.time())
            while (wait := second - time.time()) > 0:
                time.sleep(wait)
            in_batches(producer, lambda i: task.apply_async((i,), producer=producer), n, batch)
    return {"publishes": [s for s in stamps if s[1] >= 0], "start": start}


def op_publish_cost(p: dict[str, Any]) -> dict[str, Any]:
    """What one publish costs Celery, with no scheduler around it: ``celery.beat``'s own
    ``Scheduler.apply_async(entry, producer=..., advance=False)``, the call both schedulers
    make for every due entry, ``n`` times through one producer. Medians of ``reps`` rounds,
    in seconds per publish."""
    from celery.beat import ScheduleEntry, Scheduler

    n, reps, batch = int(p["n"]), int(p["reps"]), int(p.get("batch", 1))
    app = make_app(p["url"])
    scheduler = Scheduler(app, lazy=True)
    producer = scheduler.producer
    entry = ScheduleEntry(name="floor", task=TASK, schedule=schedule(3600), args=(0,), app=app)

    def publish(_: int) -> None:
        scheduler.apply_async(entry, producer=producer, advance=False)

    warmup = 200
    in_batches(producer, publish, warmup, batch)  # connect, declare, warm the caches
    rounds = []
    for _ in range(reps):
        t0 = time.perf_counter()
        in_batches(producer, publish, n, batch)
        rounds.append((time.perf_counter() - t0) / n)
    rounds.sort()
    return {
        "seconds_per_publish": rounds[len(rounds) // 2],
        "rounds": rounds,
        "n": n,
        "reps": reps,
        "batch": batch,
        "published": warmup + reps * n,
    }


def op_publish_burst(p: dict[str, Any]) -> dict[str, Any]:
    """B3's floor, with no scheduler at all: ``n`` entries (index 1..n, built beforehand) all
    published through ``celery.beat``'s ``Scheduler.apply_async`` from the due second T on, one
    by one or in batches (``batch``, see :func:`in_batches`). What the runner times is when each
    message reached the broker; ``warmup`` publishes of index 0 go out before."""
    from celery.beat import ScheduleEntry, Scheduler

    n, batch, warmup = int(p["n"]), int(p.get("batch", 1)), int(p.get("warmup", 20))
    app = make_app(p["url"])
    scheduler = Scheduler(app, lazy=True)
    producer = scheduler.producer
    entries = [
        ScheduleEntry(name=name_of(i), task=TASK, schedule=schedule(EVERY), args=(i,), app=app)
        for i in range(n + 1)
    ]

    def publish(i: int) -> None:
        scheduler.apply_async(entries[i], producer=producer, advance=False)

    in_batches(producer, lambda _: publish(0), warmup, batch)
    gc.collect()
    gc.freeze()
    due_at = float(math.ceil(time.time() + float(p.get("lead", 1.5))))
    while (wait := due_at - time.time()) > 0:
        time.sleep(wait)
    start = len(PUBLISHED)
    in_batches(producer, lambda i: publish(i + 1), n, batch)
    stamps = [t for t, _ in PUBLISHED[start:]]
    return {
        "due_at": due_at,
        "first": stamps[0],
        "last": stamps[-1],
        "round_trips": 0,
        "ticks": 0,
        "warmup": warmup,
        "lock_held_after": None,
    }


# ----------------------------------------------------------------------------- B7: policies (ours)


def publish_log() -> list[tuple[float, int, str]]:
    """From now on, ``(time.time(), entry index, task id)`` of every publish in this process
    (the index is the task's first argument, as the entries here are stored)."""
    stamps: list[tuple[float, int, str]] = []

    def record(body: Any = None, headers: Any = None, **_: Any) -> None:
        index = body[0][0] if body and body[0] else -1
        stamps.append((time.time(), int(index), str((headers or {}).get("id"))))

    before_task_publish.connect(record, weak=False)
    return stamps


def spread(offsets: list[float], width: float, buckets: int) -> dict[str, Any]:
    """How ``offsets`` (seconds after a due instant) are distributed: count per bucket of
    ``width`` seconds (``buckets`` of them from 0, plus what falls before and after), the most
    in any one second (a sliding window), and the first, last and span."""
    ordered = sorted(offsets)
    if not ordered:
        return {"n": 0}
    counts = [0] * buckets
    before = after = 0
    for value in ordered:
        k = math.floor(value / width) if width > 0 else 0
        if k < 0:
            before += 1
        elif k >= buckets:
            after += 1
        else:
            counts[k] += 1
    busiest, lo = 0, 0
    for hi, value in enumerate(ordered):
        while value - ordered[lo] >= 1.0:
            lo += 1
        busiest = max(busiest, hi - lo + 1)
    return {
        "n": len(ordered),
        "first": ordered[0],
        "last": ordered[-1],
        "span": ordered[-1] - ordered[0],
        "width": width,
        "buckets": counts,
        "before": before,
        "after": after,
        "max_in_one_second": busiest,
    }


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``values``, interpolated between the two nearest (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _save_entries(app: Any, entries: list[Any]) -> None:
    """Store entries the way ``entry.save()`` does (``to_stored()``: checked, encoded, scored
    with the policy), many per round trip, meta included."""
    from redbeat_core.runtime import get_runtime

    store = get_runtime(app).store
    for start in range(0, len(entries), 2000):
        store.save_many([e.to_stored() for e in entries[start : start + 2000]], keep_meta=False)


def op_policy_burst(p: dict[str, Any]) -> dict[str, Any]:
    """B7, a burst: entries 1..n of an interval all due at the same whole second T, run by
    ``celery beat``'s loop (tick, sleep the returned interval) until all are published.
    ``mode``: ``none`` (no jitter), ``entry`` (each entry's policy sets ``jitter``, stored as
    ``save()`` writes it: the jittered time) or ``default`` (the app's ``redbeat_jitter``,
    entries without a policy, stored by an app without the setting: scores at T, as a beat
    left them before the setting was turned on). Every publish is compared with its run's own
    due time (T plus its jitter), and the round trips of every tick are counted."""
    from redbeat import RedBeatSchedulerEntry
    from redbeat_core.policy import jitter_offset

    n, every, mode = int(p["n"]), float(p["every"]), str(p["mode"])
    jitter = float(p.get("jitter") or 0.0) if mode != "none" else 0.0
    window = float(p.get("window") or jitter or 1.0)  # what the spreads are bucketed over
    url = p["url"]
    admin = admin_client(url)
    admin.flushall()
    app = make_app(url, **({"redbeat_jitter": jitter} if mode == "default" else {}))
    app.redbeat_redis = counting_client(url)
    scheduler = new_scheduler(app)
    acquire(scheduler)
    # Warm-up: entry 0, late by more than the jitter window, so it runs at once in every mode.
    due0 = time.time() - jitter - 1.5
    admin.hset(
        key_of(0),
        mapping={"definition": definition_json(0, every), "meta": meta_json(due0 - every)},
    )
    admin.zadd(SCHEDULE_KEY, {key_of(0): due0})
    drain(scheduler, 1)
    scheduler.tick()

    due_at = float(math.ceil(time.time() + float(p.get("lead", 4.0))))
    saver = make_app(url) if mode == "default" else app
    last = datetime.fromtimestamp(due_at - every, tz=UTC)
    policy = {"jitter": jitter} if mode == "entry" else None
    entries = [
        RedBeatSchedulerEntry(
            name_of(i),
            TASK,
            schedule(run_every=every),
            args=[i],
            app=saver,
            policy=policy,
            last_run_at=last,
        )
        for i in range(1, n + 1)
    ]
    _save_entries(saver, entries)
    # The harness's own objects are not the beat's: gone before the beat loop, so a garbage
    # collection during the burst scans what a beat's would.
    del entries
    gc.collect()
    left = due_at - time.time()
    if left < 0.2:
        raise RuntimeError(f"the entries were stored {-left:.2f}s after T: raise the lead")
    scores = {
        int(key[len(PREFIX) + 1 :]): float(score)
        for key, score in admin.zrange(SCHEDULE_KEY, 0, -1, withscores=True)
        if key != key_of(0)
    }
    if len(scores) != n:
        raise RuntimeError(f"{len(scores)} of {n} entries scheduled")
    stored = spread([s - due_at for s in scores.values()], window / 10, 10)
    # Each run's own due time: T plus its jitter (the stored score is that, rounded up to the
    # millisecond; in mode "default" the stored score is T until the beat re-scores it).
    own = {i: due_at + jitter_offset(name_of(i), due_at, jitter) for i in scores}

    stamps = publish_log()
    sent0 = CountingConnection.sent
    deadline = time.monotonic() + left + jitter + float(p.get("timeout", 120))
    ticks = 0
    per_tick: dict[int, int] = {}
    busy_ticks = 0
    while len(stamps) < n and time.monotonic() < deadline and ticks < MAX_TICKS:
        sent = CountingConnection.sent
        interval = scheduler.tick()
        trips = CountingConnection.sent - sent
        per_tick[trips] = per_tick.get(trips, 0) + 1
        busy_ticks += trips > 1
        ticks += 1
        if len(stamps) >= n:
            break
        if interval and interval > 0:
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    if len(stamps) != n:
        raise RuntimeError(f"burst: {len(stamps)} of {n} dispatched before the deadline")
    if sorted(i for _, i, _ in stamps) != list(range(1, n + 1)):
        raise RuntimeError("burst: an entry was published twice or not at all")
    late = [t - own[i] for t, i, _ in stamps]
    published = spread([t - due_at for t, _, _ in stamps], window / 10, 10)
    return {
        "mode": mode,
        "n": n,
        "jitter": jitter,
        "due_at": due_at,
        "stored": stored,
        "published": published,
        "late_vs_due": {
            "min": min(late),
            "p50": percentile(late, 0.5),
            "p99": percentile(late, 0.99),
            "max": max(late),
        },
        "ticks": ticks,
        "busy_ticks": busy_ticks,
        "round_trips": CountingConnection.sent - sent0,
        "round_trips_per_tick": {str(k): v for k, v in sorted(per_tick.items())},
        "lock_held_after": admin.get(LOCK_KEY) is not None,
    }


def op_policy_scores(p: dict[str, Any]) -> dict[str, Any]:
    """B7, no waiting: ``n`` entries on ``crontab(minute=0)`` with a policy ``jitter``, saved
    as ``save()`` writes them (one save of many), their scores read back from the server: how
    the next top of the hour's runs are spread. Saved twice, to show the spread is the same
    (a hash of name and due time: a failover or a restart does not re-roll it)."""
    from celery.schedules import crontab

    from redbeat import RedBeatSchedulerEntry

    n, jitter = int(p["n"]), float(p["jitter"])
    admin = admin_client(p["url"])
    admin.flushall()
    app = make_app(p["url"])
    top = (math.floor(time.time() / 3600) + 1) * 3600.0
    if top - time.time() < 120:  # both saves before it: an overdue run is due now, unjittered
        top += 3600
    last = datetime.fromtimestamp(top - 3600, tz=UTC)

    def save() -> dict[str, float]:
        entries = [
            RedBeatSchedulerEntry(
                name_of(i),
                TASK,
                crontab(minute=0),
                args=[i],
                app=app,
                policy={"jitter": jitter},
                last_run_at=last,
            )
            for i in range(n)
        ]
        t0 = time.perf_counter()
        _save_entries(app, entries)
        took.append(time.perf_counter() - t0)
        return {k: float(s) for k, s in admin.zrange(SCHEDULE_KEY, 0, -1, withscores=True)}

    took: list[float] = []
    first = save()
    second = save()
    if len(first) != n:
        raise RuntimeError(f"{len(first)} of {n} entries scheduled")
    if time.time() >= top:
        raise RuntimeError("the top of the hour passed while the entries were saved")
    return {
        "n": n,
        "jitter": jitter,
        "top_of_hour": top,
        "scores": spread([s - top for s in first.values()], jitter / 10, 10),
        "same_on_second_save": first == second,
        "save_seconds": took,
    }


def _variant_policy(variant: str, now: float, jitter: float) -> dict[str, Any] | None:
    policies: dict[str, dict[str, Any] | None] = {
        "none": None,
        "skip": {"misfire": "skip"},
        "skip_late": {"misfire": "skip"},
        "deadline": {"starting_deadline": 30.0},
        "jitter": {"jitter": jitter},
        "bounds": {"start_at": now - 86_400, "end_at": now + 30 * 86_400, "max_runs": 10**9},
        "run_all": {"misfire": "run_all"},
        "idempotent": None,
        "overlap": {"overlap": "skip"},
    }
    return policies[variant]


#: B7's cost variants, in the report's order.
POLICY_VARIANTS = (
    "none",
    "skip",
    "skip_late",
    "deadline",
    "jitter",
    "bounds",
    "run_all",
    "idempotent",
    "overlap",
)


def op_policy_cost(p: dict[str, Any]) -> dict[str, Any]:
    """B7, the cost of each policy per due entry: B1's busy tick (``due`` of ``n`` stored
    entries due, a fresh slice each time), once per variant, all in this process and
    interleaved round by round (the order rotates), with Celery's own publish (the floor)
    measured in every round too. Each variant has its own key prefix, schedule and lock on the
    one server, and its own scheduler (``idempotent`` is an app-wide setting). Wall time and
    this process's CPU time (``process_time``: what the scheduler itself computes, not the
    time it waits for the server or for a core another process holds) are both kept.

    Every due entry is on time (due 1.5 s ago) except for ``skip_late``, due 120 s ago, beyond
    ``redbeat_misfire_grace``: all skipped, nothing published; ``run_all``'s entries each
    missed ``missed`` due times of the interval, one run each; ``jitter``'s are due at their
    jittered time, as the beat stores it."""
    from celery.beat import ScheduleEntry, Scheduler

    from redbeat_core.policy import jitter_offset

    n, every, due, reps = int(p["n"]), float(p["every"]), int(p["due"]), int(p["reps"])
    missed, jitter = int(p["missed"]), float(p["jitter"])
    variants = list(p.get("variants") or POLICY_VARIANTS)
    if 1 + (reps + 1) * due > n:
        raise ValueError(f"{reps + 1} slices of {due} do not fit in {n} entries")
    url = p["url"]
    admin = admin_client(url)
    admin.flushall()
    start = time.time()
    stamps = publish_log()

    class Variant:
        def __init__(self, name: str) -> None:
            self.name = name
            self.prefix = f"{name}:"
            self.schedule_key = self.prefix + ":schedule"
            self.policy = _variant_policy(name, start, jitter)
            # A variant's scheduler waits for the others' ticks between two of its own (seconds
            # on a loaded machine): a lease longer than the default 10 s keeps its lock held.
            conf: dict[str, Any] = {"redbeat_key_prefix": self.prefix, "redbeat_lock_timeout": 120}
            if name == "idempotent":
                conf["redbeat_idempotent_task_ids"] = True
            self.app = make_app(url, **conf)
            self.app.redbeat_redis = counting_client(url)
            self.per_entry = 0 if name == "skip_late" else missed if name == "run_all" else 1
            self.runs: list[dict[str, Any]] = []
            self.scheduler: Any = None

        def key(self, i: int) -> str:
            return self.prefix + name_of(i)

        def populate(self) -> None:
            policy = json.dumps(self.policy) if self.policy else None
            pipe = admin.pipeline(transaction=False)
            for i in range(n + 1):
                at = start + every * (0.25 + 0.74 * i / max(n, 1))
                fields = {"definition": definition_json(i, every), "meta": meta_json(at - every)}
                if policy:
                    fields["policy"] = policy
                pipe.hset(self.key(i), mapping=fields)
                pipe.zadd(self.schedule_key, {self.key(i): at})
                if len(pipe) >= 20_000:
                    pipe.execute()
            pipe.execute()
            if self.name == "overlap":  # a worker that records runs, for the whole case
                admin.zadd(self.prefix + ":trackers", {"bench-worker": time.time() + 86_400})

        def make_due(self, indexes: range) -> None:
            """Untimed, on the admin connection: the slice's runs due now (see above)."""
            now = time.time()
            late = 120.0 if self.name == "skip_late" else 1.5
            if self.name == "jitter":
                late += jitter
            runs = missed if self.name == "run_all" else 1
            first = now - late - (runs - 1) * every  # the oldest due time not run
            pipe = admin.pipeline(transaction=False)
            for i in indexes:
                score = first
                if self.name == "jitter":
                    score += jitter_offset(name_of(i), first, jitter)
                pipe.hset(self.key(i), "meta", meta_json(first - every, 1))
                pipe.zadd(self.schedule_key, {self.key(i): score})
            pipe.execute()

        def tick_through(self, expected: int, entries: int) -> int:
            if expected:
                return drain(self.scheduler, expected)
            ticks = math.ceil(entries / int(self.scheduler.config.batch_size))
            for _ in range(ticks):
                self.scheduler.tick()
            return ticks

        def measure(self, indexes: range, *, keep: bool = True) -> None:
            self.make_due(indexes)
            expected = self.per_entry * len(indexes)
            before = len(stamps)
            cpu: list[float] = []

            def run() -> int:
                c0 = time.process_time()
                ticks = self.tick_through(expected, len(indexes))
                cpu.append(time.process_time() - c0)
                return ticks

            result = measured(admin, run)
            result["cpu_seconds"] = cpu[0]
            if result["published"] != expected:
                raise RuntimeError(f"{self.name}: {result['published']} of {expected} published")
            left = admin.zcount(self.schedule_key, "-inf", time.time())
            if left:
                raise RuntimeError(
                    f"{self.name}: {left} entries still due after the tick ({result}; lock "
                    f"TTL left {admin.pttl(self.prefix + ':lock')} ms)"
                )
            ids = [task_id for _, _, task_id in stamps[before:]]
            versions = {uuid.UUID(task_id).version for task_id in ids}
            if ids and versions != ({5} if self.name == "idempotent" else {4}):
                raise RuntimeError(f"{self.name}: task ids of UUID versions {versions}")
            if keep:
                self.runs.append(result)

    table = [Variant(name) for name in variants]
    for variant in table:
        variant.populate()
        variant.scheduler = new_scheduler(variant.app)
        acquire(variant.scheduler)
        variant.make_due(range(1))  # warm-up: scripts loaded, producer connected, one run
        variant.tick_through(variant.per_entry, 1)
        variant.scheduler.tick()
    floor_app = make_app(url)
    floor_scheduler = Scheduler(floor_app, lazy=True)
    producer = floor_scheduler.producer
    floor_entry = ScheduleEntry(
        name="floor", task=TASK, schedule=schedule(3600), args=(0,), app=floor_app
    )
    for _ in range(200):  # connect, declare, warm the caches
        floor_scheduler.apply_async(floor_entry, producer=producer, advance=False)
    # The first scheduler's tick froze what was alive then (as a beat does at its first tick);
    # the other schedulers were built after it: freeze them too, as one beat's would be.
    gc.collect()
    gc.freeze()
    floor: list[float] = []
    floor_cpu: list[float] = []
    # Round 0 is not kept: a claim writes the run records of the tick before it (the run
    # history), and before round 0 that was the one-entry warm-up.
    for r in range(reps + 1):
        shift = r % len(table)
        for variant in table[shift:] + table[:shift]:
            variant.measure(range(1 + r * due, 1 + (r + 1) * due), keep=r > 0)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(due):
            floor_scheduler.apply_async(floor_entry, producer=producer, advance=False)
        if r:
            floor.append((time.perf_counter() - t0) / due)
            floor_cpu.append((time.process_time() - c0) / due)
    return {
        "n": n,
        "due": due,
        "reps": reps,
        "missed": missed,
        "jitter": jitter,
        "floor_per_publish": sorted(floor)[len(floor) // 2],
        "floor_cpu_per_publish": sorted(floor_cpu)[len(floor_cpu) // 2],
        "floor_rounds": floor,
        "floor_cpu_rounds": floor_cpu,
        "variants": {
            v.name: {"policy": v.policy, "per_entry": v.per_entry, "runs": v.runs} for v in table
        },
    }


OPS = {
    "publish_cost": op_publish_cost,
    "publish_floor": op_publish_floor,
    "publish_burst": op_publish_burst,
    "populate": op_populate,
    "ticks": op_ticks,
    "hook_cost": op_hook_cost,
    "profile": op_profile,
    "memory": op_memory,
    "startup": op_startup,
    "burst": op_burst,
    "policy_burst": op_policy_burst,
    "policy_scores": op_policy_scores,
    "policy_cost": op_policy_cost,
}


def main() -> None:
    op, params = sys.argv[1], json.loads(sys.argv[2])
    BROKER["url"] = params.get("broker") or BROKER["url"]
    info = check_side(params["side"])
    result = OPS[op](params)
    result["side_info"] = info
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
