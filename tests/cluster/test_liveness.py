"""Lock liveness on a real cluster: the contenders subscribe on the node that owns the lock key's
slot (the channels carry its hash tag), so a standby's acquire script, run on that node, counts
the leader's subscription and takes over as soon as it closes."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery
from redis.cluster import RedisCluster

from redbeat import RedBeatScheduler
from redbeat_redis.lock import RedisLock

LONG_LOCK = {"redbeat_lock_timeout": 60.0, "redbeat_lock_poll_interval": 0.05}


def test_a_standby_takes_over_when_the_leaders_connection_closes(
    make_cluster_app: Callable[..., Celery], cluster_client: RedisCluster
) -> None:
    leader = RedBeatScheduler(app=make_cluster_app(**LONG_LOCK))
    standby = RedBeatScheduler(app=make_cluster_app(**LONG_LOCK))
    try:
        leader.tick()
        lock = leader.lock
        assert isinstance(lock, RedisLock)
        assert lock.held
        assert cluster_client.hget(lock.holder_key, "watched") == f"{lock.key}:alive:{lock.token}"
        standby.tick()
        assert standby.lock is not None
        assert not standby.lock.held
        assert lock._watch is not None
        lock._watch.close()  # what the kernel does when the leader's process dies
        standby.tick()
        assert standby.lock.held
        assert cluster_client.pttl(lock.key) > 50_000  # not a lapse
    finally:
        standby.close()
        leader.close()
