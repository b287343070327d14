"""Lock liveness, on real servers: a standby takes over from a leader whose process the server
saw die (its liveness subscription closed) at its next poll, not when the lease lapses; wakes at
once on a graceful release; and the lease still bounds a leader the server cannot see die.
Fencing holds: the replaced leader's claims and commits fail."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from celery.schedules import schedule
from redbeat_test_support import ago, wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_redis.lock import RedisLock

#: A lease far longer than any takeover these tests wait for: a takeover before it lapses
#: can only be the liveness signal.
LONG_LOCK = {"redbeat_lock_timeout": 60.0, "redbeat_lock_poll_interval": 0.1}


def redis_lock(scheduler: RedBeatScheduler) -> RedisLock:
    assert isinstance(scheduler.lock, RedisLock)
    return scheduler.lock


def due(app: Any, name: str) -> None:
    entry = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(60), app=app)
    entry.last_run_at = ago(300)
    entry.save()


def test_a_standby_takes_over_at_once_when_the_leaders_connection_closes(
    make_app: Any, sent: list[dict[str, Any]], client: Any
) -> None:
    leader = RedBeatScheduler(app=make_app(**LONG_LOCK))
    standby = RedBeatScheduler(app=make_app(**LONG_LOCK))
    try:
        leader.tick()
        assert redis_lock(leader).held
        watched = client.hget(redis_lock(leader).holder_key, "watched")
        assert watched == f"{leader.lock_key}:alive:{redis_lock(leader).token}"
        standby.tick()
        assert not redis_lock(standby).held  # the leader's subscription is open: it lives
        # What the kernel does when the leader's process dies: its connections close.
        redis_lock(leader)._watch.close()  # type: ignore[union-attr]
        standby.tick()
        assert redis_lock(standby).held
        assert client.pttl(leader.lock_key) > 50_000  # long before the lease could lapse
        assert redis_lock(standby).epoch == redis_lock(leader).epoch + 1
        # Fencing: the old leader, still running after all, dispatches nothing.
        due(leader.app, "zombie")
        leader.tick()
        assert not redis_lock(leader).held
        assert [m["task"] for m in sent] == []
        standby.tick()
        assert [m["task"] for m in sent] == ["tasks.zombie"]
    finally:
        standby.close()
        leader.close()


def test_a_frozen_leader_keeps_its_lease_until_it_lapses(make_app: Any, client: Any) -> None:
    """A leader that stops ticking with its connections open (SIGSTOP, a long GC pause) is
    indistinguishable from a slow one: the standby waits for the lease."""
    conf = {"redbeat_lock_timeout": 1.0, "redbeat_lock_poll_interval": 0.1}
    leader = RedBeatScheduler(app=make_app(**conf))
    standby = RedBeatScheduler(app=make_app(**conf))
    try:
        leader.tick()
        taken = time.monotonic()
        wait_for(lambda: bool(standby.tick() is not None and standby.lock.held), 5, "takeover")
        assert time.monotonic() - taken >= 0.5
    finally:
        standby.close()
        leader.close()


def test_a_waiting_standby_wakes_when_the_leader_releases(make_app: Any, client: Any) -> None:
    conf = {"redbeat_lock_timeout": 60.0, "redbeat_lock_poll_interval": 30.0}
    leader = RedBeatScheduler(app=make_app(**conf))
    standby = RedBeatScheduler(app=make_app(**conf))
    released = f"{leader.lock_key}:released"
    waited: list[float] = []
    try:
        leader.tick()
        waiting = threading.Thread(target=lambda: waited.append(standby.tick()))
        waiting.start()
        # The standby subscribed (beside the leader), found the lease held (it noted itself
        # as a standby), and waits on the channel.
        standbys = redis_lock(leader).standbys_key
        wait_for(lambda: client.zcard(standbys) == 1, 10, "the standby tried the lease")
        assert client.pubsub_numsub(released)[0][1] == 2
        started = time.monotonic()
        leader.close()  # a graceful stop publishes the release
        waiting.join(timeout=20)
        assert waited == [0.0]  # woken by the release, long before its 30 s poll
        assert time.monotonic() - started < 20
        assert not redis_lock(standby).held
        standby.tick()
        assert redis_lock(standby).held
    finally:
        standby.close()
        leader.close()


@pytest.mark.parametrize("side", ["standby", "leader"])
def test_with_liveness_off_the_lease_alone_decides(side: str, make_app: Any, client: Any) -> None:
    off = {**LONG_LOCK, "redbeat_lock_liveness": False}
    leader = RedBeatScheduler(app=make_app(**(off if side == "leader" else LONG_LOCK)))
    standby = RedBeatScheduler(app=make_app(**(off if side == "standby" else LONG_LOCK)))
    try:
        leader.tick()
        assert redis_lock(leader).held
        if side == "leader":
            assert client.hget(redis_lock(leader).holder_key, "watched") is None
        else:
            redis_lock(leader)._watch.close()  # type: ignore[union-attr]
        for _ in range(3):
            # Off on the standby: Celery sleeps the poll interval. On: it waits on the
            # release channel for as long, then tries at once.
            assert standby.tick() == pytest.approx(0.1 if side == "standby" else 0.0)
        assert not redis_lock(standby).held
    finally:
        standby.close()
        leader.close()
