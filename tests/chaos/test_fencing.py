"""Fencing, exactly: a leader frozen (SIGSTOP) at a chosen point of its tick, another beat
taking over meanwhile, the frozen one resumed (SIGCONT), and what each delivery mode promises.

Two real beats share a store and a broker (harness.py). The leader's test plugin (chaos_app.py)
stops at the armed point and tells the test, which freezes it there; no sleep synchronises
anything. The points, in the order a tick reaches them:

* ``idle``: a tick just ended, nothing is in flight. On resume the old leader's next claim
  finds the lock taken and it becomes a standby.
* ``before_dispatch``: the tick's runs are planned. Under at-most-once they are committed
  (between commit and publish): on resume the old leader sees by its own clock that its lease
  may have lapsed and drops them rather than publish late (issue #16 item 7); the new leader
  does not run them again (they are stored as run), so they are lost, as at-most-once allows.
  Under at-least-once nothing is committed yet: the new leader publishes those runs, and the
  resumed one leaves them due (it publishes nothing, its commit is refused).
* ``after_dispatch``: the runs are published. Under at-most-once they were committed first:
  nothing more happens. Under at-least-once they are not committed yet (between publish and
  commit): the new leader publishes them again (the duplicate at-least-once accepts rather
  than lose a run) and the resumed one's commit is refused, so each is counted once.

In every case the resumed beat publishes nothing, at-most-once publishes no run twice,
at-least-once loses no run, and no due time is missed outside the freeze and takeover.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from chaos.harness import (
    Beat,
    Setup,
    Stamp,
    Window,
    account,
    chaos_setup,
    read_stamps,
    save_entries,
    stored_counts,
    wait_until,
)

INTERVALS = {"every-1s-a": 1.0, "every-1s-b": 1.0}
#: Short, so that each takeover costs a couple of seconds.
LEASE = 2.0
POLL = 1.0
SLACK = 1.5


def published_by(setup: Setup, pid: int | None) -> list[Stamp]:
    return [s for s in read_stamps(setup.broker) if s.pid == pid]


def freeze_at(setup: Setup, point: str) -> tuple[Beat, dict[str, Any]]:
    """Arm ``point``, wait for the leader to reach it, freeze it there (SIGSTOP) and let its
    hook go on once it is resumed. Returns the frozen beat and what it reported (its runs)."""
    workdir = setup.workdir
    (workdir / f"arm-{point}").touch()
    at = workdir / f"at-{point}"
    wait_until(at.exists, 15, f"the leader reaches {point}")
    report: dict[str, Any] = json.loads(at.read_text())
    beat = setup.fleet.by_pid(report["pid"])
    assert beat is not None, report
    setup.fleet.signal(beat, signal.SIGSTOP)
    (workdir / f"go-{point}").touch()  # read only once it runs again
    return beat, report


@pytest.mark.parametrize("point", ["idle", "before_dispatch", "after_dispatch"])
@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once"])
def test_a_frozen_leader_resumed_after_a_takeover(
    tmp_path: Path, chaos_kind: str, delivery: str, point: str
) -> None:
    """Freeze the leader at ``point``, let the standby take over and publish, resume the old
    one: check each run in flight at the freeze against the mode's promise, and that the
    resumed beat publishes nothing."""
    with chaos_setup(
        tmp_path, kind=chaos_kind, delivery=delivery, lock_timeout=LEASE, beats=2
    ) as setup:
        setup.fleet.start_all()
        setup.fleet.wait_ready()
        leader = setup.wait_for_leader()
        first_due = time.time() + 1.0
        save_entries(setup.store.url, INTERVALS, first_due)
        wait_until(lambda: len(published_by(setup, leader.pid)) >= 2, 15, "the leader publishes")

        frozen, report = freeze_at(setup, point)
        frozen_at = time.time()
        in_flight = {(r["entry"], r["run"]): r["due"] for r in report["runs"]}
        if point != "idle":
            assert in_flight, report  # both entries are due in every tick that publishes
        other = next(b for b in setup.fleet.beats if b.slot != frozen.slot)
        wait_until(lambda: setup.leader() is other, LEASE + POLL + 10, "the standby takes over")
        took_over = time.time()
        wait_until(lambda: len(published_by(setup, other.pid)) >= 3, 15, "the new leader publishes")

        resumed_at = time.time()
        setup.fleet.signal(frozen, signal.SIGCONT)
        log = frozen.logs[-1]
        wait_until(
            lambda: "this beat is now a standby" in log.read_text(),
            15,
            "the resumed beat steps down",
        )
        wait_until(lambda: len(published_by(setup, other.pid)) >= 5, 15, "the schedule goes on")
        end = time.time() - 1.0
        setup.fleet.stop_all()
        stamps = read_stamps(setup.broker)
        counts = stored_counts(setup.store, INTERVALS)
        text = log.read_text()

    window = Window(frozen_at - 0.5, took_over + SLACK, f"{point} freeze and takeover")
    tally = account(stamps, counts, INTERVALS, [window], first_due, end)
    details = f"{delivery} at {point}: {tally.summary()}\nin flight: {in_flight}\n{text[-3000:]}"
    late = [s for s in stamps if s.pid == frozen.pid and s.at > resumed_at]
    assert late == [], details  # a beat whose lease lapsed publishes nothing
    assert tally.misses == [], details
    assert tally.conflicts == [], details

    def publishes(run: tuple[str, int]) -> list[Stamp]:
        return [s for s in stamps if (s.entry, s.run) == run]

    if delivery == "at-most-once":
        assert tally.duplicates == [], details
        assert tally.uncommitted == [], details
        if point == "before_dispatch":
            # Committed, then frozen: dropped on resume, not published late; not run again.
            assert sorted(tally.lost) == sorted(in_flight), details
            assert "the lease may have lapsed while this beat waited" in text, details
            assert "they were stored as run, so they are lost (at-most-once)" in text, details
        else:
            assert tally.lost == [], details
    else:
        assert tally.lost == [], details
        assert tally.lost_at_stop == [], details
        for run, due in in_flight.items():
            found = publishes(run)
            assert {s.due for s in found} == {due}, details
            if point == "before_dispatch":
                # Not committed, not published by the frozen beat: the new leader runs it once.
                assert [s.pid for s in found] == [other.pid], details
            else:
                # Published, then frozen before the commit: published again by the new leader.
                assert {s.pid for s in found} == {frozen.pid, other.pid}, details
                assert len(found) == 2, details
        if point == "before_dispatch":
            assert "they stay due and are tried again (at-least-once)" in text, details
        expected_duplicates = sorted(in_flight) if point == "after_dispatch" else []
        assert sorted(tally.duplicates) == expected_duplicates, details
        # Stored as run (by the new leader), once: the frozen beat's commit was refused.
        assert all(number <= counts[name] for name, number in in_flight), details
