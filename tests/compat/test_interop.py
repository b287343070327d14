"""Interop with the REAL celery-redbeat 2.4.2, run from its own venv against the same server.

celery-redbeat is driven by scripts run with ``REDBEAT_COMPAT_PYTHON`` (see conftest.py); our
side runs in-process. Both describe entries with the same code (compat_helpers.py), so "equal
fields" means equal name, task, args, kwargs, options, enabled, schedule, last_run_at and
total_run_count, datetimes compared with their offset and zone name.

Ticks are driven by calling ``tick()`` directly and publishes counted with Celery's
``before_task_publish`` signal on a ``memory://`` broker, except in the test with two real
``celery beat`` processes, which uses the server as broker too. Waiting is always a poll with a
deadline; nothing is synchronised by a bare sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from celery.schedules import crontab, schedule, solar
from celery.signals import before_task_publish
from dateutil.rrule import FR, MO, WE

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.model import EntryPolicy
from redbeat_core.schedules import clocked, rrule


def _load_helpers() -> Any:
    """compat_helpers.py, the code both interpreters share (tests/compat is no package)."""
    import importlib.util

    path = Path(__file__).with_name("compat_helpers.py")
    spec = importlib.util.spec_from_file_location("redbeat_compat_helpers_tests", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_helpers()
Compat = Any  # conftest.Compat: the `compat` fixture's driver

SCHEDULE_KEY = "redbeat::schedule"
STATICS_KEY = "redbeat::statics"
LOCK_KEY = "redbeat::lock"
#: Celery's default, and one far from UTC with a half-hour offset (crontabs, last_run_at zones).
APP_TIMEZONES = ["UTC", "Asia/Kolkata"]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def published() -> Iterator[list[str]]:
    """Task names published by OUR process, in order."""
    names: list[str] = []

    def record(sender: Any = None, headers: Any = None, **_: Any) -> None:
        names.append(headers["task"] if headers else sender)

    before_task_publish.connect(record, weak=False)
    yield names
    before_task_publish.disconnect(record)


@pytest.fixture
def client(redbeat_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redbeat_url, decode_responses=True)
    yield client
    client.close()


def far_hour() -> int:
    """An hour of the day about 12 hours from now: crontabs there are never due in a test."""
    return (datetime.now(UTC).hour + 12) % 24


def describe(app: Any, name: str, prefix: str = "redbeat:") -> dict[str, Any]:
    """Our reading of entry ``name``, as compat_helpers describes it (JSON round trip, like
    the other side's description)."""
    entry = RedBeatSchedulerEntry.from_key(prefix + name, app=app)
    return json.loads(json.dumps(helpers.describe_entry(entry)))


def our_due(app: Any, name: str) -> float | None:
    due = RedBeatSchedulerEntry.from_key(f"redbeat:{name}", app=app).due_at
    return None if due is None else due.timestamp()


def assert_same_due(name: str, ours: float | None, theirs: float | None) -> None:
    """celery-redbeat's score is whole seconds (rounded down); ours has ms precision. Both
    "due now" is the same due time, whatever the clock read on each side."""
    assert theirs is not None, f"{name}: celery-redbeat left it out of {SCHEDULE_KEY}"
    if theirs == -1:  # celery-redbeat's score for "no further runs"
        assert ours is None, f"{name}: finished for celery-redbeat, we say due at {ours}"
        return
    assert ours is not None, f"{name}: we see no next run; celery-redbeat scored {theirs}"
    now = time.time()
    if theirs <= now and ours <= now:
        return
    assert abs(ours - theirs) <= 1.0, f"{name}: we say due at {ours}, celery-redbeat {theirs}"


def tick_until(scheduler: Any, done: Callable[[], bool], wait_until: Any, what: str) -> None:
    """Tick ``scheduler`` (ours) until ``done()``, with a deadline."""

    def step() -> bool:
        scheduler.tick()
        return done()

    wait_until(step, what, timeout=10, every=0.05)


# ============================================================ 1. celery-redbeat -> RedBeat

THEIRS_WRITE = """
far = PARAMS["far_hour"]
app = make_app(
    beat_schedule=static_schedule(far), redbeat_lock_key=None, timezone=PARAMS["timezone"]
)
conf = ensure_conf(app)
client = get_redis(app)
now = datetime.now(UTC)
paris = ZoneInfo("Europe/Paris")
plus2 = timezone(timedelta(hours=2))
plus0530 = timezone(timedelta(hours=5, minutes=30))

# celery-redbeat's own beat: its setup_schedule syncs beat_schedule, its tick runs "ticked".
RedBeatSchedulerEntry(
    "ticked", "tasks.ticked", schedule(1.0), args=["t"], app=app, last_run_at=ago(10)
).save()
scheduler = RedBeatScheduler(app=app)
scheduler.tick()
scheduler.close()
ticked_by_celery_redbeat = list(PUBLISHED)

when = datetime(2024, 3, 10, 1, 2, 3, 456789, tzinfo=UTC)
RedBeatSchedulerEntry(
    "interval",
    "tasks.interval",
    schedule(timedelta(seconds=30)),
    args=[1, when, "x", None, [when]],
    kwargs={
        "paris": datetime(2024, 7, 1, 12, 0, 0, 1, tzinfo=paris),
        "naive": datetime(2024, 1, 1, 0, 0),
        "nested": {"at": [datetime(2023, 12, 31, 23, 59, 59, tzinfo=plus0530)]},
    },
    options={"queue": "q1", "priority": 3, "expires": 30.0},
    app=app,
    last_run_at=ago(60),
).save()
RedBeatSchedulerEntry(
    "crontab",
    "tasks.crontab",
    crontab(minute="7,37", hour=str(far), day_of_week="mon-fri"),
    app=app,
).save()
RedBeatSchedulerEntry(
    "rrule_weekly",
    "tasks.rrule_weekly",
    rrule(
        "WEEKLY",
        dtstart=(now - timedelta(days=30))
        .astimezone(plus2)
        .replace(hour=far, minute=13, second=0, microsecond=0),
        until=(now + timedelta(days=60)).astimezone(paris),
        byweekday=[MO, WE, FR],
    ),
    args=[when],
    app=app,
).save()
RedBeatSchedulerEntry(
    "rrule_due",
    "tasks.rrule_due",
    rrule(
        "HOURLY",
        dtstart=(now - timedelta(hours=10, minutes=30)).replace(microsecond=0),
        until=now + timedelta(days=1),
    ),
    app=app,
    last_run_at=ago(7200),
).save()
RedBeatSchedulerEntry(
    "disabled", "tasks.disabled", schedule(10.0), enabled=False, app=app, last_run_at=ago(60)
).save()
# An entry with run history, written by celery-redbeat's next(entry) (as its beat does).
ran = RedBeatSchedulerEntry(
    "ran", "tasks.ran", schedule(30.0), kwargs={"a": 1}, app=app, last_run_at=ago(300)
).save()
ran = ran._next_instance(last_run_at=ago(120))
ran = ran._next_instance(last_run_at=ago(90))
# A finished rrule: celery-redbeat scores it -1 and keeps it in the schedule.
RedBeatSchedulerEntry(
    "finished",
    "tasks.finished",
    rrule(
        "DAILY",
        dtstart=datetime(2020, 1, 1, tzinfo=UTC),
        until=datetime(2020, 1, 5, tzinfo=UTC),
    ),
    app=app,
    last_run_at=datetime(2020, 1, 5, tzinfo=UTC),
).save()

out = {}
for name in PARAMS["names"]:
    key = conf.key_prefix + name
    entry = RedBeatSchedulerEntry.from_key(key, app=app)
    out[name] = {"entry": describe_entry(entry), "score": client.zscore(conf.schedule_key, key)}
emit(
    {
        "entries": out,
        "published": ticked_by_celery_redbeat,
        "statics": sorted(client.smembers(conf.statics_key)),
        "schedule": sorted(client.zrange(conf.schedule_key, 0, -1)),
    }
)
"""

THEIR_ENTRIES = [
    "interval",
    "crontab",
    "rrule_weekly",
    "rrule_due",
    "disabled",
    "ran",
    "finished",
    "ticked",
    "static-fast",
    "static-cron",
]


@pytest.mark.parametrize("tz", APP_TIMEZONES)
def test_entries_written_by_celery_redbeat_are_read_and_run_by_ours(
    tz: str,
    compat: Compat,
    make_app: Any,
    redbeat_url: str,
    published: list[str],
    client: Any,
    wait_until: Any,
) -> None:
    """celery-redbeat writes (save(), next(entry), its setup_schedule and tick); we read every
    field and the due time back, dispatch what is due exactly once, keep its run history and
    extend it, and never dispatch its disabled entry."""
    far = far_hour()
    theirs = compat.run(
        THEIRS_WRITE, url=redbeat_url, far_hour=far, names=THEIR_ENTRIES, timezone=tz
    )
    assert theirs["published"] == ["tasks.ticked"]  # its own tick ran it once
    assert theirs["statics"] == ["static-cron", "static-fast"]
    # celery-redbeat keeps its disabled entry in the schedule (we would not).
    assert "redbeat:disabled" in theirs["schedule"]
    entries = theirs["entries"]
    assert entries["ran"]["entry"]["total_run_count"] == 2
    assert entries["ticked"]["entry"]["total_run_count"] == 1

    app = make_app(beat_schedule=helpers.static_schedule(far), timezone=tz)
    for name in THEIR_ENTRIES:
        assert describe(app, name) == entries[name]["entry"], name
        assert_same_due(name, our_due(app, name), entries[name]["score"])

    # Our beat starts with the same beat_schedule: its sync keeps celery-redbeat's statics
    # and their last_run_at.
    scheduler = RedBeatScheduler(app=app)
    try:
        assert client.smembers(STATICS_KEY) == {"static-fast", "static-cron"}
        for name in ("static-fast", "static-cron"):
            assert describe(app, name) == entries[name]["entry"], name

        scheduler.tick()
        assert Counter(published) == Counter(
            {"tasks.interval": 1, "tasks.rrule_due": 1, "tasks.ran": 1}
        ) + Counter(t for t in published if t in {"tasks.ticked", "tasks.static_fast"})
        # The 1-second entries (celery-redbeat's whole-second scores) come due next.
        tick_until(
            scheduler,
            lambda: {"tasks.ticked", "tasks.static_fast"} <= set(published),
            wait_until,
            "our beat dispatched celery-redbeat's 1 s entries",
        )
        scheduler.tick()
    finally:
        scheduler.close()

    counts = Counter(published)
    for task in ("tasks.interval", "tasks.rrule_due", "tasks.ran"):
        assert counts[task] == 1, (task, published)
    for task in (
        "tasks.disabled",
        "tasks.finished",
        "tasks.crontab",
        "tasks.rrule_weekly",
        "tasks.static_cron",
    ):
        assert counts[task] == 0, (task, published)

    # Run history: celery-redbeat's counts are kept and incremented.
    ran = describe(app, "ran")
    assert ran["total_run_count"] == 3
    their_last = datetime.fromisoformat(entries["ran"]["entry"]["last_run_at"]["datetime"])
    our_last = datetime.fromisoformat(ran["last_run_at"]["datetime"])
    assert their_last < our_last <= datetime.now(UTC)
    assert describe(app, "ticked")["total_run_count"] == 1 + counts["tasks.ticked"]
    assert describe(app, "interval")["total_run_count"] == 1  # save() wrote no count: 0
    assert describe(app, "rrule_due")["total_run_count"] == 1
    # Design decision: a disabled entry leaves our schedule (celery-redbeat keeps it); its
    # hash stays, unchanged.
    assert client.zscore(SCHEDULE_KEY, "redbeat:disabled") is None
    assert describe(app, "disabled") == entries["disabled"]["entry"]
    assert client.zscore(SCHEDULE_KEY, "redbeat:finished") is None  # its -1 score is gone
    assert describe(app, "finished") == entries["finished"]["entry"]


# ============================================================ 2. RedBeat -> celery-redbeat

THEIRS_READ_AND_TICK = """
app = make_app(
    beat_schedule=static_schedule(PARAMS["far_hour"]),
    redbeat_lock_timeout=10,
    timezone=PARAMS["timezone"],
)
conf = ensure_conf(app)
client = get_redis(app)


def read(name):
    return describe_entry(RedBeatSchedulerEntry.from_key(conf.key_prefix + name, app=app))


entries = {name: read(name) for name in PARAMS["names"]}

# celery-redbeat's beat on our data: its setup_schedule re-reads our statics, then it takes
# the lock as at beat_init and ticks until our 1-second entry comes due again.
scheduler = RedBeatScheduler(app=app)
statics_after_setup = {name: read(name) for name in ("static-fast", "static-cron")}
acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))
lock_holder = client.get(conf.lock_key)
ticks = 0
deadline = time.monotonic() + 15
try:
    while "tasks.o_fast" not in PUBLISHED:
        if time.monotonic() > deadline:
            raise SystemExit(f"celery-redbeat never dispatched o-fast; published {PUBLISHED}")
        scheduler.tick()
        ticks += 1
        time.sleep(0.05)
finally:
    scheduler.close()
emit(
    {
        "entries": entries,
        "statics_after_setup": statics_after_setup,
        "published": PUBLISHED,
        "ticks": ticks,
        "lock_held": lock_holder is not None,
        "o_fast_after": read("o-fast"),
    }
)
"""

OUR_ENTRIES = [
    "o-interval",
    "o-crontab",
    "o-rrule",
    "o-disabled",
    "o-finished",
    "o-policy",
    "o-fast",
    "static-fast",
    "static-cron",
]


def as_stored(value: Any) -> Any:
    """A description of an entry as it comes back from storage in either project: a naive
    datetime is stored as UTC (``"timezone": "UTC"``), as celery-redbeat does."""
    if isinstance(value, dict):
        if set(value) == {"datetime", "zone", "offset"} and value["offset"] is None:
            return {"datetime": value["datetime"] + "+00:00", "zone": "UTC", "offset": 0.0}
        return {k: as_stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_stored(v) for v in value]
    return value


def save_our_entries(app: Any, far: int) -> dict[str, Any]:
    """Save our test entries; returns each one's description as it was saved."""
    now = datetime.now(UTC)
    paris = ZoneInfo("Europe/Paris")
    when = datetime(2024, 3, 10, 1, 2, 3, 456789, tzinfo=UTC)
    written: dict[str, Any] = {}

    def save(name: str, task: str, sched: Any, **fields: Any) -> None:
        last_run_at = fields.pop("last_run_at", None)
        entry = RedBeatSchedulerEntry(name, task, sched, app=app, **fields)
        if last_run_at is not None:
            entry.last_run_at = last_run_at
        written[name] = as_stored(json.loads(json.dumps(helpers.describe_entry(entry))))
        entry.save()

    save(
        "o-interval",
        "tasks.o_interval",
        schedule(timedelta(seconds=45)),
        args=[1, when, [when], None],
        kwargs={
            "paris": datetime(2024, 7, 1, 12, 0, 0, 1, tzinfo=paris),
            "naive": datetime(2024, 1, 1),
            "offset": datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        },
        options={"queue": "q2", "priority": 5},
        last_run_at=now - timedelta(minutes=5),
    )
    save(
        "o-crontab",
        "tasks.o_crontab",
        crontab(minute="7,37", hour=str(far), day_of_week="mon-fri"),
    )
    save(
        "o-rrule",
        "tasks.o_rrule",
        rrule(
            "WEEKLY",
            dtstart=(now - timedelta(days=30))
            .astimezone(timezone(timedelta(hours=2)))
            .replace(hour=far, minute=13, second=0, microsecond=0),
            # rrule bounds are stored as whole seconds with a fixed UTC offset (a zone
            # name is not kept, by celery-redbeat either), so this one is written that way.
            until=(now + timedelta(days=60))
            .astimezone(timezone(timedelta(hours=-5)))
            .replace(microsecond=0),
            byweekday=[MO, WE, FR],
        ),
        kwargs={"at": when},
    )
    save(
        "o-disabled",
        "tasks.o_disabled",
        schedule(10.0),
        enabled=False,
        last_run_at=now - timedelta(minutes=1),
    )
    save(
        "o-finished",
        "tasks.o_finished",
        rrule(
            "DAILY",
            dtstart=datetime(2020, 1, 1, tzinfo=UTC),
            until=datetime(2020, 1, 5, tzinfo=UTC),
        ),
        last_run_at=datetime(2020, 1, 5, tzinfo=UTC),
    )
    save(
        "o-policy",
        "tasks.o_policy",
        schedule(45.0),
        policy=EntryPolicy(extra={"x-compat-test": {"jitter": 3}}),
        last_run_at=now - timedelta(minutes=5),
    )
    save(
        "o-fast", "tasks.o_fast", schedule(1.0), args=["f"], last_run_at=now - timedelta(seconds=10)
    )
    return written


@pytest.mark.parametrize("tz", APP_TIMEZONES)
def test_entries_written_and_run_by_ours_are_read_and_run_by_celery_redbeat(
    tz: str,
    compat: Compat,
    make_app: Any,
    redbeat_url: str,
    published: list[str],
    client: Any,
    wait_until: Any,
) -> None:
    """We write (save(), our setup_schedule) and run entries (our tick writes meta with
    total_run_count); celery-redbeat reads every field back, its setup_schedule keeps our
    statics' run history, and its tick dispatches our due entry and continues our count."""
    far = far_hour()
    app = make_app(beat_schedule=helpers.static_schedule(far), timezone=tz)
    written = save_our_entries(app, far)
    # Design decision: disabled and finished entries stay out of our schedule from the start.
    assert client.zscore(SCHEDULE_KEY, "redbeat:o-disabled") is None
    assert client.zscore(SCHEDULE_KEY, "redbeat:o-finished") is None
    scheduler = RedBeatScheduler(app=app)  # syncs beat_schedule
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    assert sorted(published) == ["tasks.o_fast", "tasks.o_interval", "tasks.o_policy"]
    assert client.get(LOCK_KEY) is None  # released at close()

    # Design decisions, visible in the data celery-redbeat is about to read.
    assert client.zscore(SCHEDULE_KEY, "redbeat:o-disabled") is None
    assert client.zscore(SCHEDULE_KEY, "redbeat:o-finished") is None
    assert json.loads(client.hget("redbeat:o-policy", "policy")) == {"x-compat-test": {"jitter": 3}}
    ours = {name: describe(app, name) for name in OUR_ENTRIES}
    assert ours["o-fast"]["total_run_count"] == 1

    theirs = compat.run(
        THEIRS_READ_AND_TICK, url=redbeat_url, far_hour=far, names=OUR_ENTRIES, timezone=tz
    )
    for name in OUR_ENTRIES:
        assert theirs["entries"][name] == ours[name], name
    # ... and equal to what was saved (run history aside, for the entries our beat ran).
    ran_by_us = {"o-interval", "o-policy", "o-fast"}
    run_state = {"last_run_at", "total_run_count"}
    for name, saved in written.items():
        skip = run_state if name in ran_by_us else set()
        got = {k: v for k, v in theirs["entries"][name].items() if k not in skip}
        assert got == {k: v for k, v in saved.items() if k not in skip}, name
    assert theirs["statics_after_setup"] == {n: ours[n] for n in ("static-fast", "static-cron")}
    assert theirs["lock_held"]
    their_counts = Counter(theirs["published"])
    assert their_counts["tasks.o_fast"] == 1
    # Only the 1-second entries came due again; nothing ours already ran was sent twice.
    assert set(their_counts) <= {"tasks.o_fast", "tasks.static_fast"}, theirs["published"]
    assert theirs["o_fast_after"]["total_run_count"] == 2  # ours 1, then theirs

    # Back on our side: celery-redbeat's whole-second score and meta are picked up again.
    assert describe(app, "o-fast") == theirs["o_fast_after"]
    assert client.hget("redbeat:o-policy", "policy") is not None  # it ignored and kept it
    published.clear()
    scheduler = RedBeatScheduler(app=app)
    try:
        tick_until(
            scheduler,
            lambda: "tasks.o_fast" in published,
            wait_until,
            "our beat dispatched o-fast after celery-redbeat ran it",
        )
    finally:
        scheduler.close()
    assert describe(app, "o-fast")["total_run_count"] == 3


THEIRS_READ_NEW_TYPE = """
app = make_app(redbeat_lock_key=None)
key = ensure_conf(app).key_prefix + PARAMS["name"]


def attempt(call):
    try:
        call()
    except Exception as exc:
        return {"type": type(exc).__name__, "message": str(exc)}
    return None


scheduler = RedBeatScheduler(app=app)
emit(
    {
        "from_key": attempt(lambda: RedBeatSchedulerEntry.from_key(key, app=app)),
        "tick": attempt(scheduler.tick),
    }
)
"""


@pytest.mark.celery_redbeat_limitation
@pytest.mark.parametrize("kind", ["clocked", "solar"])
def test_limitation_celery_redbeat_cannot_read_new_schedule_types(
    kind: str, compat: Compat, make_app: Any, redbeat_url: str, client: Any
) -> None:
    """DOCUMENTS A LIMITATION, by design (design.md section 3): ``solar`` and ``clocked`` are
    types celery-redbeat 2.4.2 does not know. Its decoder hands the ``{"__type__": ...}``
    dict to ``ScheduleEntry``, whose ``maybe_schedule`` fails with AttributeError; its tick
    does not catch that, so a celery-redbeat beat leading during a rolling migration CRASHES
    when such an entry is due. Do not create these types before every beat runs RedBeat."""
    app = make_app()
    if kind == "solar":
        pytest.importorskip("ephem")
        sched: Any = solar("sunrise", 48.85, 2.35)
    else:
        sched = clocked(datetime.now(UTC) - timedelta(seconds=1))  # due now, never ran
    RedBeatSchedulerEntry(f"new-{kind}", "tasks.new", sched, app=app).save()
    # A solar entry is due at the next sunrise: put it where it will be when the sun rises.
    client.zadd(SCHEDULE_KEY, {f"redbeat:new-{kind}": time.time() - 1})
    stored = json.loads(client.hget(f"redbeat:new-{kind}", "definition"))
    assert stored["schedule"]["__type__"] == kind

    theirs = compat.run(THEIRS_READ_NEW_TYPE, url=redbeat_url, name=f"new-{kind}")
    failure = {"type": "AttributeError", "message": "'dict' object has no attribute 'app'"}
    assert theirs == {"from_key": failure, "tick": failure}


# ============================================================ 3. the beat lock

THEIRS_LOCK_HOLDER = """
# A celery-redbeat beat: beat_init's acquire_distributed_beat_lock (blocking: it polls every
# max_interval until the lock is free), then ticks (each tick extends the lock) until told to
# stop on stdin, then close() releases the lock.
app = make_app(
    redbeat_lock_timeout=PARAMS["lock_timeout"], beat_max_loop_interval=PARAMS["max_interval"]
)
scheduler = RedBeatScheduler(app=app)
stop = wait_for_stop_line()
emit({"event": "started", "lock_key": scheduler.lock_key, "lock_timeout": scheduler.lock_timeout})
acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))
token = scheduler.lock.local.token
emit({"event": "acquired", "token": token.decode() if isinstance(token, bytes) else token})
while not stop.wait(0.2):
    scheduler.tick()
scheduler.close()
emit({"event": "released", "published": PUBLISHED})
"""

THEIRS_TRY_LOCK = """
# celery-redbeat's lock object, built exactly as acquire_distributed_beat_lock builds it, but
# acquired without blocking.
app = make_app(redbeat_lock_timeout=PARAMS["lock_timeout"])
scheduler = RedBeatScheduler(app=app)
client = get_redis(app)
lock = client.lock(scheduler.lock_key, timeout=scheduler.lock_timeout, sleep=scheduler.max_interval)
acquired = lock.acquire(blocking=False)
owned = lock.owned()
if acquired:
    lock.release()
emit({"lock_key": scheduler.lock_key, "acquired": acquired, "owned": owned})
"""

#: celery-redbeat holds its lock for 25 minutes by default; 2 s keeps the takeover tests short.
THEIR_LOCK_TIMEOUT = 2
THEIR_MAX_INTERVAL = 0.2


def test_ours_stays_standby_while_celery_redbeat_holds_the_lock(
    compat: Compat,
    make_app: Any,
    redbeat_url: str,
    published: list[str],
    client: Any,
    wait_until: Any,
) -> None:
    """(a) While a celery-redbeat beat holds ``redbeat::lock``, every tick of ours is a
    standby tick (no dispatch, waits the lock poll interval, lock not held), even with an
    entry due every second; when it releases the lock, ours takes over and dispatches."""
    app = make_app(redbeat_lock_poll_interval=0.1)
    entry = RedBeatSchedulerEntry("every-second", "tasks.every_second", schedule(1.0), app=app)
    entry.last_run_at = datetime.now(UTC) - timedelta(seconds=5)
    entry.save()

    holder = compat.spawn(
        THEIRS_LOCK_HOLDER,
        url=redbeat_url,
        lock_timeout=THEIR_LOCK_TIMEOUT,
        max_interval=THEIR_MAX_INTERVAL,
    )
    started = holder.wait_for("started")
    assert started["lock_key"] == LOCK_KEY
    their_token = holder.wait_for("acquired")["token"]
    assert client.get(LOCK_KEY) == their_token

    scheduler = RedBeatScheduler(app=app)
    try:
        # Over a few of its lock extensions (about a second), ours never leads.
        deadline = time.monotonic() + 1.0
        standby_ticks = 0
        while time.monotonic() < deadline:
            interval = scheduler.tick()
            standby_ticks += 1
            # It waited the poll interval for a release (celery-redbeat publishes none, and
            # records no liveness channel: its lease decides), then tries again at once.
            assert interval == 0.0
            assert scheduler.lock is not None
            assert not scheduler.lock.held
            assert client.get(LOCK_KEY) == their_token  # each tick waited 0.1 s
        assert standby_ticks >= 5
        assert published == []

        holder.send("stop")
        released = holder.wait_for("released")
        assert "tasks.every_second" in released["published"]  # it led, and dispatched

        tick_until(
            scheduler,
            lambda: scheduler.lock is not None and scheduler.lock.held,
            wait_until,
            "our beat took the lock celery-redbeat released",
        )
        assert client.get(LOCK_KEY) == scheduler.lock.token
        tick_until(
            scheduler,
            lambda: "tasks.every_second" in published,
            wait_until,
            "our beat dispatched after taking over",
        )
    finally:
        scheduler.close()
        holder.stop()


def test_celery_redbeat_cannot_take_our_lock_and_takes_over_after_us(
    compat: Compat,
    make_app: Any,
    redbeat_url: str,
    published: list[str],
    client: Any,
    wait_until: Any,
) -> None:
    """(b) While ours holds the lock, celery-redbeat's non-blocking acquire returns False and
    its blocking beat_init acquire keeps waiting. (c) When ours releases it (close()), the
    waiting celery-redbeat beat acquires it; when that beat is SIGKILLed (its lock is never
    released), ours takes over once the lock's TTL has run out."""
    app = make_app()
    ours = RedBeatScheduler(app=app)
    ours_closed = False
    ours2 = None
    try:
        ours.tick()
        assert ours.lock is not None
        assert ours.lock.held
        our_token = ours.lock.token
        assert client.get(LOCK_KEY) == our_token

        tried = compat.run(THEIRS_TRY_LOCK, url=redbeat_url, lock_timeout=THEIR_LOCK_TIMEOUT)
        assert tried == {"lock_key": LOCK_KEY, "acquired": False, "owned": False}
        assert client.get(LOCK_KEY) == our_token

        holder = compat.spawn(
            THEIRS_LOCK_HOLDER,
            url=redbeat_url,
            lock_timeout=THEIR_LOCK_TIMEOUT,
            max_interval=THEIR_MAX_INTERVAL,
        )
        holder.wait_for("started")
        # It polls every 0.2 s; over a second of our ticks it never gets the lock.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            ours.tick()
            assert ours.lock.held
            assert not holder.seen("acquired")
            time.sleep(0.1)
        assert client.get(LOCK_KEY) == our_token

        ours.close()  # releases the lock at once
        ours_closed = True
        their_token = holder.wait_for("acquired", timeout=10)["token"]
        assert client.get(LOCK_KEY) == their_token

        ours2 = RedBeatScheduler(app=make_app())
        assert ours2.tick() == 0.0  # a standby: waited the poll interval for a release
        assert ours2.lock is not None
        assert not ours2.lock.held

        holder.kill()  # SIGKILL: the lock stays until its 2 s TTL runs out
        killed_at = time.monotonic()
        ttl = client.pttl(LOCK_KEY)
        assert 0 < ttl <= THEIR_LOCK_TIMEOUT * 1000
        tick_until(
            ours2,
            lambda: ours2.lock.held,
            wait_until,
            "our beat took over the lock of the killed celery-redbeat beat",
        )
        assert time.monotonic() - killed_at <= THEIR_LOCK_TIMEOUT + 1.5
        assert client.get(LOCK_KEY) == ours2.lock.token
    finally:
        if not ours_closed:
            ours.close()
        if ours2 is not None:
            ours2.close()


THEIRS_CUSTOM_KEYS = """
app = make_app(
    redbeat_key_prefix=PARAMS["prefix"], redbeat_lock_key=PARAMS["lock_key"], redbeat_lock_timeout=5
)
conf = ensure_conf(app)
scheduler = RedBeatScheduler(app=app)
client = get_redis(app)
lock = client.lock(scheduler.lock_key, timeout=scheduler.lock_timeout, sleep=scheduler.max_interval)
ours = describe_entry(RedBeatSchedulerEntry.from_key(conf.key_prefix + "mine", app=app))
RedBeatSchedulerEntry("theirs", "tasks.theirs", schedule(60.0), args=[2], app=app).save()
theirs = describe_entry(RedBeatSchedulerEntry.from_key(conf.key_prefix + "theirs", app=app))
emit(
    {
        "lock_key": scheduler.lock_key,
        "schedule_key": conf.schedule_key,
        "statics_key": conf.statics_key,
        "acquired": lock.acquire(blocking=False),
        "mine": ours,
        "theirs": theirs,
        "scheduled": sorted(client.zrange(conf.schedule_key, 0, -1)),
    }
)
"""


def test_custom_prefix_and_lock_key_mean_the_same_keys(
    compat: Compat, make_app: Any, redbeat_url: str, client: Any
) -> None:
    """With ``redbeat_key_prefix`` and a ``redbeat_lock_key`` lacking the prefix, both
    projects derive the same keys (the prefix is prepended to the lock key), exclude each
    other on that lock, and read each other's entries there."""
    app = make_app(redbeat_key_prefix="myapp:", redbeat_lock_key="beat-lock")
    mine = RedBeatSchedulerEntry("mine", "tasks.mine", schedule(60.0), args=[1], app=app)
    mine.save()
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held
        assert scheduler.config.lock_key == "myapp:beat-lock"
        assert client.get("myapp:beat-lock") == scheduler.lock.token
        theirs = compat.run(
            THEIRS_CUSTOM_KEYS, url=redbeat_url, prefix="myapp:", lock_key="beat-lock"
        )
    finally:
        scheduler.close()
    assert theirs["lock_key"] == scheduler.config.lock_key
    assert theirs["schedule_key"] == scheduler.config.schedule_key == "myapp::schedule"
    assert theirs["statics_key"] == scheduler.config.statics_key == "myapp::statics"
    assert theirs["acquired"] is False
    assert theirs["mine"] == describe(app, "mine", prefix="myapp:")
    assert theirs["theirs"] == describe(app, "theirs", prefix="myapp:")
    # (both beats also store Celery's default entry, celery.backend_cleanup, there)
    assert {"myapp:mine", "myapp:theirs"} <= set(theirs["scheduled"])
    assert all(key.startswith("myapp:") for key in theirs["scheduled"])
    assert client.zcard("redbeat::schedule") == 0


# ============================================================ 4. two real `celery beat`s

BEAT_APP = """
import os

from celery import Celery

app = Celery("compatbeat")
app.conf.update(
    broker_url=os.environ["COMPAT_BROKER_URL"],
    redbeat_redis_url=os.environ["COMPAT_REDBEAT_URL"],
    beat_max_loop_interval=1,
    redbeat_lock_timeout=3,
    beat_schedule={"every-second": {"task": "compatbeat.ping", "schedule": 1.0}},
)
"""

SENT = "Sending due task every-second"


class Beat:
    """One ``celery beat`` process, its output in a file, stopped by its pid."""

    def __init__(self, python: str, workdir: Path, label: str, env: dict[str, str]) -> None:
        self.log_path = workdir / f"{label}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                python,
                "-m",
                "celery",
                "-A",
                "compatbeat",
                "beat",
                "-S",
                "redbeat.RedBeatScheduler",
                "--loglevel=INFO",
                "--pidfile=",
            ],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sent(self) -> int:
        return self.log().count(SENT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_two_real_beats_never_both_dispatch(
    compat_python: str, redbeat_url: str, client: Any, tmp_path: Path, wait_until: Any
) -> None:
    """A celery-redbeat ``celery beat`` and ours, same Redis, same beat_schedule, the server as
    broker (db 1): while celery-redbeat's holds the lock only it sends; stopped (SIGTERM, it
    releases the lock), ours takes over. Every message on the broker was logged as sent by
    exactly one of them, and the entry's run count carries on across the handover."""
    (tmp_path / "compatbeat.py").write_text(BEAT_APP)
    broker_url = redbeat_url.rsplit("/", 1)[0] + "/1"
    broker = redis.Redis.from_url(broker_url)
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    env.update(
        PYTHONPATH=str(tmp_path),
        PYTHONDONTWRITEBYTECODE="1",
        COMPAT_BROKER_URL=broker_url,
        COMPAT_REDBEAT_URL=redbeat_url,
    )
    their_env = {**env, "PYTHONPATH": _kombu_redis_path(compat_python, tmp_path, env)}
    theirs = Beat(compat_python, tmp_path, "celery-redbeat", their_env)
    ours: Beat | None = None
    try:
        wait_until(lambda: theirs.sent() >= 1, "celery-redbeat's beat sends", timeout=20)
        their_token = client.get(LOCK_KEY)
        assert their_token

        ours = Beat(sys.executable, tmp_path, "redbeat", env)
        wait_until(lambda: "beat: Starting..." in ours.log(), "our beat starts", timeout=20)
        sent_when_ours_started = theirs.sent()
        # A beat logs "Sending due task" just before it publishes: stop one only once the
        # broker holds every message logged so far, or SIGTERM can land in between.
        wait_until(
            lambda: (
                theirs.sent() >= sent_when_ours_started + 3
                and broker.llen("celery") == theirs.sent()
            ),
            "celery-redbeat keeps sending while ours runs",
            timeout=10,
        )
        assert ours.proc.poll() is None, ours.log()
        assert ours.sent() == 0, ours.log()
        assert client.get(LOCK_KEY) == their_token

        theirs.stop(signal.SIGTERM)
        assert "Releasing lock" in theirs.log(), theirs.log()
        their_total = theirs.sent()
        wait_until(
            lambda: ours.sent() >= 2 and broker.llen("celery") == their_total + ours.sent(),
            "our beat takes over and sends",
            timeout=15,
        )
        assert "acquired the lock" in ours.log(), ours.log()
        ours.stop(signal.SIGTERM)
        our_total = ours.sent()
    finally:
        theirs.stop(signal.SIGKILL)
        if ours is not None:
            ours.stop(signal.SIGKILL)
        broker.close()

    # Every message on the broker was logged by exactly one beat: none sent twice.
    queued = broker_llen(broker_url)
    meta = json.loads(client.hget("redbeat:every-second", "meta"))
    counts = (
        f"queued {queued}, run count {meta['total_run_count']}, logged {their_total}+{our_total}"
    )
    logs = f"celery-redbeat:\n{theirs.log()}\nours:\n{ours.log()}"
    assert queued == their_total + our_total, f"{counts}\n{logs}"
    assert meta["total_run_count"] == their_total + our_total, f"{counts}\n{logs}"


def _kombu_redis_path(python: str, workdir: Path, env: dict[str, str]) -> str:
    """PYTHONPATH for the celery-redbeat beat so that kombu's redis transport imports.

    The compat venv holds celery-redbeat and celery only; kombu's redis transport also needs
    ``packaging`` (the ``celery[redis]`` extra). When it is missing there, a folder holding a
    link to our interpreter's copy of ``packaging`` alone (pure Python, same Python version) is
    put first on the path; nothing else of our environment (``redbeat`` above all) is exposed.
    """
    probe = subprocess.run(
        [python, "-c", "import kombu.transport.redis"],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=60,
        check=False,
    )
    if probe.returncode == 0:
        return env["PYTHONPATH"]
    assert "No module named 'packaging'" in probe.stderr, probe.stderr
    import packaging

    shim = workdir / "compat-shim"
    shim.mkdir()
    (shim / "packaging").symlink_to(Path(packaging.__file__).parent, target_is_directory=True)
    return os.pathsep.join([str(shim), env["PYTHONPATH"]])


def broker_llen(url: str) -> int:
    broker = redis.Redis.from_url(url)
    try:
        return int(broker.llen("celery"))
    finally:
        broker.close()
