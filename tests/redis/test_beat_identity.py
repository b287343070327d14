"""Beats that say what they are (#18 item 4): the holder recorded beside the lock, a standby
that says once who leads (and again when that changes), the leader's periodic summary and
``Schedule.lock_status``, on a real server."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from celery.schedules import schedule
from redbeat_test_support import ago

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry, Schedule
from redbeat_redis import lock as redis_lock


def standby_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "beat: standby:" in r.getMessage()]


def test_the_holder_is_recorded_beside_the_lock_which_stays_a_token(app: Any, client: Any) -> None:
    leader = RedBeatScheduler(app=app)
    try:
        leader.tick()
        token = client.get("redbeat::lock")
        assert token == leader.lock.token  # type: ignore[union-attr]
        record = client.hgetall("redbeat::lock:holder")
        assert record["token"] == token
        assert record["identity"] == redis_lock.beat_identity()
        assert record["epoch"] == "1"
        assert abs(int(record["since"]) / 1000 - float(client.time()[0])) < 5
    finally:
        leader.close()


def test_a_standby_says_once_who_leads_and_again_when_it_changes(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="celery.beat")
    first, standby_app, second = make_app(), make_app(), make_app()
    monkeypatch.setattr(redis_lock, "beat_identity", lambda: "beat-a:1")
    leader = RedBeatScheduler(app=first)
    standby = RedBeatScheduler(app=standby_app)
    takeover = RedBeatScheduler(app=second)
    try:
        leader.tick()
        monkeypatch.setattr(redis_lock, "beat_identity", lambda: "beat-b:2")
        standby.tick()
        standby.tick()
        (line,) = standby_lines(caplog)
        assert "held by beat-a:1 (since " in line
        assert "epoch 1)" in line
        leader.close()  # releases: beat-c takes over before the standby polls again
        monkeypatch.setattr(redis_lock, "beat_identity", lambda: "beat-c:3")
        takeover.tick()
        monkeypatch.setattr(redis_lock, "beat_identity", lambda: "beat-b:2")
        standby.tick()
        lines = standby_lines(caplog)
        assert len(lines) == 2
        assert "held by beat-c:3" in lines[1]
        assert "epoch 2)" in lines[1]
    finally:
        for scheduler in (leader, standby, takeover):
            scheduler.close()


def test_a_holder_that_does_not_record_itself_is_named_as_such(
    app: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="celery.beat")
    client.set("redbeat::lock", "celery-redbeat-token", px=10_000)  # as redis-py's Lock does
    standby = RedBeatScheduler(app=app)
    try:
        standby.tick()
        (line,) = standby_lines(caplog)
        assert "does not record who it is (celery-redbeat" in line
        status = Schedule(app).lock_status()
        assert status.held
        assert status.holder is not None
        assert status.holder.identity is None
    finally:
        standby.close()


def test_lock_status_shows_the_leader_its_lease_and_the_standbys(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, other = make_app(redbeat_lock_timeout=10), make_app()
    leader = RedBeatScheduler(app=app)
    standby = RedBeatScheduler(app=other)
    try:
        leader.tick()
        monkeypatch.setattr(redis_lock, "beat_identity", lambda: "standby-host:42")
        standby.tick()
        status = Schedule(app).lock_status()
        assert status.held
        assert status.holder is not None
        assert status.holder.identity == f"{socket.gethostname()}:{__import__('os').getpid()}"
        assert status.holder.epoch == status.epoch == 1
        assert status.lease_left is not None
        assert 0 < status.lease_left <= 10
        assert [identity for identity, _ in status.standbys] == ["standby-host:42"]
        assert status.to_json()["standbys"][0]["identity"] == "standby-host:42"
        leader.close()
        free = Schedule(app).lock_status()
        assert (free.held, free.holder, free.lease_left, free.epoch) == (False, None, None, 1)
    finally:
        leader.close()
        standby.close()


def test_no_lock_status_for_a_single_beat(make_app: Any) -> None:
    with pytest.raises(ValueError, match="without a lock"):
        Schedule(make_app(redbeat_lock_key=None)).lock_status()


def test_the_leader_logs_a_summary_every_interval(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="celery.beat")
    app = make_app(redbeat_summary_interval=0.001)
    for name in ("a", "b", "c"):
        entry = RedBeatSchedulerEntry(name, "tasks.add", schedule(60), app=app)
        entry.last_run_at = ago(120)
        entry.save()
    leader = RedBeatScheduler(app=app)
    try:
        leader.tick()
        lines = [r.getMessage() for r in caplog.records if "leader summary" in r.getMessage()]
        assert lines, "no summary line"
        # Celery adds its own backend_cleanup static entry to every beat: count what is stored.
        assert f"{leader.store.count()} entries scheduled" in lines[-1]
        assert "3 dispatched, 0 skipped" in lines[-1]
        assert "0 failed to publish" in lines[-1]
    finally:
        leader.close()


def test_no_summary_when_turned_off(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="celery.beat")
    leader = RedBeatScheduler(app=make_app(redbeat_summary_interval=0))
    try:
        leader.tick()
        leader.tick()
        assert not [r for r in caplog.records if "leader summary" in r.getMessage()]
    finally:
        leader.close()
