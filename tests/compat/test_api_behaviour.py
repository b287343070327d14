"""The same celery-redbeat API code gives the same answers under celery-redbeat 2.4.2 and ours.

Each script runs twice against the same real server: in celery-redbeat's own interpreter and
in ours (a subprocess of this interpreter, where ``redbeat`` is ours). What the code observes
(equality, hashing, ``repr``, generated keys, ``app.redbeat_conf``'s answers, the scheduler's
lock settings, the ``schedule`` property) must be the same.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from celery.schedules import schedule

from redbeat import RedBeatSchedulerEntry

Compat = Any  # conftest.Compat: the `compat` fixture's driver (tests/compat is no package)

pytestmark = pytest.mark.usefixtures("redbeat_url")

ENTRY_OBJECTS = """
app = make_app()
stamp = datetime(2024, 1, 1, tzinfo=timezone.utc)
a = RedBeatSchedulerEntry("a", "t.a", schedule(30), args=[1], app=app, last_run_at=stamp)
b = RedBeatSchedulerEntry("a", "t.a", schedule(30), args=[1], app=app, last_run_at=stamp)
c = RedBeatSchedulerEntry("c", "t.a", schedule(30), args=[1], app=app)
try:
    hashed = hash(a) == hash(b)
except TypeError as exc:
    hashed = "TypeError"
emit({
    "repr": repr(a),
    "eq": [a == b, a == c, a != b],
    "hash": hashed,
    "keys": [
        RedBeatSchedulerEntry.generate_key(app, "x"),
        RedBeatSchedulerEntry.generate_key(app=app, name="y"),
        a.key,
    ],
})
"""

CONF = """
app = make_app(my_flag=0)
conf = ensure_conf(app)
same = conf is app.redbeat_conf
answers = [
    same,
    conf.key_prefix,
    conf.schedule_key,
    conf.statics_key,
    conf.lock_key,
    conf.lock_timeout,
    conf.either_or("my_flag", 99),
    conf.either_or("my_missing", 99),
    bool(conf.is_key_in_conf("MY_FLAG")),
]
conf.schedule = {"s": {"task": "t.s", "schedule": 60}}
answers.append(sorted(app.conf.beat_schedule))
conf.lock_timeout = 7
conf.lock_key = "redbeat:other-lock"
scheduler = RedBeatScheduler(app=app)
answers += [scheduler.lock_key, scheduler.lock_timeout]
scheduler.lock_key = None
answers.append(scheduler.lock_key)
emit(answers)
"""

SCHEDULE_PROPERTY = """
app = make_app(beat_max_loop_interval=300)
emit(sorted(RedBeatScheduler(app=app).schedule))
"""


def ours(compat: Compat, body: str, url: str) -> Any:
    """``body`` run the same way in this interpreter's environment (our ``redbeat``)."""
    return type(compat)(sys.executable).run(body, url=url)


def both(compat: Compat, body: str, url: str) -> tuple[Any, Any]:
    return compat.run(body, url=url), ours(compat, body, url)


def test_entries_compare_hash_and_show_the_same(compat: Compat, redbeat_url: str) -> None:
    theirs, mine = both(compat, ENTRY_OBJECTS, redbeat_url)
    assert mine == theirs
    assert theirs["keys"] == ["redbeat:x", "redbeat:y", "redbeat:a"]


def test_app_conf_and_the_scheduler_lock_settings_answer_the_same(
    compat: Compat, redbeat_url: str, redbeat_server: Any
) -> None:
    theirs = compat.run(CONF, url=redbeat_url)
    with redbeat_server.client() as client:
        client.flushall()
    assert ours(compat, CONF, redbeat_url) == theirs
    assert theirs[-3:] == ["redbeat:other-lock", 7, None]


def test_the_schedule_property_lists_the_same_entries(
    compat: Compat, redbeat_url: str, make_app: Any
) -> None:
    """Entries written once (by ours: celery-redbeat 2.4.2 scores an entry at its last run
    plus the time left, not now plus it, so its own writes would differ), read by both."""
    app = make_app()
    now = datetime.now(UTC)
    for name, every, minutes_ago in (
        ("due1", 60, 2),
        ("due2", 60, 3),
        ("soon", 3600, 59),
        ("later", 3600, 58),
        ("far", 3600, 0),
    ):
        entry = RedBeatSchedulerEntry(name, "t.x", schedule(every), app=app)
        entry.last_run_at = now - timedelta(minutes=minutes_ago)
        entry.save()
    # Overdue entries are saved as due "now" (milliseconds); celery-redbeat reads "now" in
    # whole seconds, so within the same second it would not count them due yet. Move them a
    # minute back so both read them as due whatever the clock.
    client = redis.Redis.from_url(redbeat_url)
    try:
        client.zadd("redbeat::schedule", {"redbeat:due1": now.timestamp() - 60})
        client.zadd("redbeat::schedule", {"redbeat:due2": now.timestamp() - 61})
    finally:
        client.close()
    theirs, mine = both(compat, SCHEDULE_PROPERTY, redbeat_url)
    assert mine == theirs == ["due1", "due2", "soon"]
