"""The chaos soak: three real beats on one store and one broker, and a driver that keeps
breaking them (issue #16's proof that stays in the project).

A seeded RNG picks the actions, in rounds that each contain every kind once in a random order:
SIGKILL of the leader (restarted after a moment), SIGSTOP of the leader for up to twice the
lease (then SIGCONT), SIGTERM of any beat (restarted), a SIGKILL and restart of the store
(persistent: nothing acknowledged is lost) and of the broker. Each action opens a window in
which due times may pass without their run (harness.Driver says how long, from the design's
promises). At the end every publish in the broker's queue and every entry's stored run count
are accounted (harness.account), and each delivery mode must keep its promise:

* at-most-once: no run published twice (not even across takeovers and frozen leaders), no run
  published that was not committed first;
* at-least-once: no run stored as run without being published, including through broker
  outages;
* both: no due time outside the windows passes without its run, and no beat exits by itself.

The default run takes one round per mode (about half a minute each, fixed seed).
``nox -s chaos`` runs it for minutes: ``REDBEAT_CHAOS_SECONDS`` and ``REDBEAT_CHAOS_SEED``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from chaos.harness import (
    ACTIONS,
    Driver,
    account,
    chaos_setup,
    read_stamps,
    save_entries,
    soak_seconds,
    soak_seed,
    stored_counts,
)

#: A few entries every 1-2 s: many due times per second, on different phases.
INTERVALS = {"every-1s-a": 1.0, "every-1s-b": 1.0, "every-1.5s": 1.5, "every-2s": 2.0}
#: A short lease, so that a takeover costs seconds and a soak sees many of them.
LEASE = 3.0


@pytest.mark.timeout(soak_seconds() + 240)
@pytest.mark.parametrize("delivery", ["at-most-once", "at-least-once"])
def test_soak_keeps_the_delivery_promise(tmp_path: Path, chaos_kind: str, delivery: str) -> None:
    """Random SIGKILL/SIGSTOP/SIGTERM of beats, store restarts and broker outages: counts
    duplicates, lost runs and misses per due time and checks them against the mode's promise."""
    seconds, seed = soak_seconds(), soak_seed()
    with chaos_setup(
        tmp_path, kind=chaos_kind, delivery=delivery, lock_timeout=LEASE, beats=3
    ) as setup:
        setup.fleet.start_all()
        setup.wait_for_leader()
        first_due = time.time() + 1.5
        save_entries(setup.store.url, INTERVALS, first_due)
        driver = Driver(setup, random.Random(seed), lock_timeout=LEASE)
        driver.run(seconds, min_actions=len(ACTIONS))
        # A quiet end, everything up: the last window closes and the schedule must run.
        time.sleep(LEASE + 2 * driver.poll + driver.slack)
        setup.fleet.check_alive()
        end = time.time() - 1.0
        setup.fleet.stop_all()
        stamps = read_stamps(setup.broker)
        counts = stored_counts(setup.store, INTERVALS)
        logs = setup.fleet.logs()
    tally = account(stamps, counts, INTERVALS, driver.windows, first_due, end)
    report = (
        f"chaos soak {delivery} ({chaos_kind}, seed {seed}, {seconds:g}s): "
        f"actions={len(driver.actions)} {tally.summary()}\n"
        f"actions: {driver.describe(first_due)}"
    )
    print(report)
    details = f"{report}\nmisses: {tally.misses[:10]}\n{logs}"

    done = {what.split()[0] for _, what in driver.actions}
    assert done == {"SIGKILL", "SIGSTOP", "SIGTERM", "store", "broker"}, details
    # The schedule ran: at least half the due times of the whole run were published.
    expected = sum((end - first_due) / every for every in INTERVALS.values())
    assert tally.runs >= expected / 2, details
    assert tally.misses == [], details
    if delivery == "at-most-once":
        assert tally.duplicates == [], details
        assert tally.uncommitted == [], details
        assert tally.conflicts == [], details
    else:
        assert tally.lost == [], details
        assert tally.lost_at_stop == [], details
