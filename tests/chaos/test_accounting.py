"""The soak's accounting (harness.account) on made-up records: each kind of failure it must
count is counted, at the due time where it happened, and nothing else is. Without these, a
soak that counts nothing would pass."""

from __future__ import annotations

import itertools

from chaos.harness import Miss, Stamp, Window, account

T0 = 1_800_000_000.0
_ids = itertools.count()


def stamp(
    run: int, due: float, *, at: float | None = None, epoch: int = 1, task_id: str = ""
) -> Stamp:
    """A publish of entry ``e`` (every 1 s), run ``run`` due ``due`` seconds after T0."""
    return Stamp(
        "e",
        T0 + due,
        run,
        pid=100 + epoch,
        epoch=epoch,
        at=T0 + (due if at is None else at),
        task_id=task_id or f"id-{next(_ids)}",
    )


EVERY = {"e": 1.0}


def test_a_clean_schedule_counts_nothing_and_checks_every_due_time() -> None:
    stamps = [stamp(n, n - 1) for n in range(1, 6)]
    tally = account(stamps, {"e": 5}, EVERY, [], T0, T0 + 4.5)
    assert tally.summary().startswith("runs=5 publishes=5 duplicates=0 lost=0+0 at stop")
    assert tally.misses == []
    assert tally.checked == 5
    assert tally.stale == []


def test_a_run_published_twice_is_a_duplicate_and_a_message_sent_twice_is_not() -> None:
    stamps = [stamp(1, 0), stamp(2, 1), stamp(2, 1, at=1.5), stamp(3, 2, task_id="x")]
    stamps.append(stamp(3, 2, task_id="x"))  # the same publish, resent by the transport
    tally = account(stamps, {"e": 3}, EVERY, [], T0, T0 + 2.5)
    assert tally.duplicates == [("e", 2)]
    assert tally.resent == 1
    assert tally.publishes == 4


def test_a_committed_run_never_published_is_lost_and_its_due_time_missed() -> None:
    stamps = [stamp(1, 0), stamp(2, 1), stamp(4, 3), stamp(5, 4)]
    tally = account(stamps, {"e": 5}, EVERY, [], T0, T0 + 4.5)
    assert tally.lost == [("e", 3)]
    assert tally.misses == [Miss("e", T0 + 2, "never published")]


def test_a_miss_inside_an_outage_window_is_excused() -> None:
    stamps = [stamp(1, 0), stamp(2, 1), stamp(4, 3)]
    outage = Window(T0 + 1.5, T0 + 2.5, "store down")
    tally = account(stamps, {"e": 4}, EVERY, [outage], T0, T0 + 3.5)
    assert tally.misses == []
    assert tally.excused == 1
    assert tally.lost == [("e", 3)]  # lost is counted whatever the windows


def test_a_run_published_but_never_committed_is_uncommitted() -> None:
    stamps = [stamp(1, 0), stamp(2, 1), stamp(3, 2)]
    tally = account(stamps, {"e": 2}, EVERY, [], T0, T0 + 2.5)
    assert tally.uncommitted == [("e", 3)]


def test_one_run_number_with_two_due_times_is_a_conflict() -> None:
    stamps = [stamp(1, 0), stamp(2, 1), stamp(2, 1.2)]
    tally = account(stamps, {"e": 2}, EVERY, [], T0, T0 + 1.5)
    assert tally.conflicts == [("e", 2)]


def test_a_tick_late_by_more_than_an_interval_misses_the_due_time_it_swallowed() -> None:
    """Due at 2, published at 3.5: the schedule moves on to 4.5, so due time 3 never runs."""
    stamps = [stamp(1, 0), stamp(2, 1), stamp(3, 2, at=3.5), stamp(4, 4.5)]
    tally = account(stamps, {"e": 4}, EVERY, [], T0, T0 + 4.6)
    assert tally.misses == [Miss("e", T0 + 3, "never published")]
    assert tally.max_lateness == 1.5


def test_a_late_tick_within_the_interval_is_no_miss() -> None:
    stamps = [stamp(1, 0), stamp(2, 1, at=1.9), stamp(3, 2.9)]
    tally = account(stamps, {"e": 3}, EVERY, [], T0, T0 + 3.0)
    assert tally.misses == []


def test_due_times_before_the_first_run_and_after_the_last_are_checked() -> None:
    stamps = [stamp(2, 1), stamp(3, 2)]
    tally = account(stamps, {"e": 3}, EVERY, [], T0, T0 + 5.5)
    assert tally.misses == [
        Miss("e", T0, "never published"),
        Miss("e", T0 + 3, "not published before the end"),
        Miss("e", T0 + 4, "not published before the end"),
        Miss("e", T0 + 5, "not published before the end"),
    ]
    assert tally.lost == [("e", 1)]


def test_a_publish_after_a_newer_leader_published_is_stale() -> None:
    old = stamp(3, 2, at=2.5, epoch=1)
    stamps = [stamp(1, 0, epoch=1), stamp(2, 1, epoch=2), old]
    tally = account(stamps, {"e": 3}, EVERY, [], T0, T0 + 2.5)
    assert tally.stale == [old]


def test_a_run_lost_while_the_beats_stop_is_counted_apart() -> None:
    stamps = [stamp(1, 0), stamp(2, 1), stamp(4, 3)]
    tally = account(stamps, {"e": 5}, EVERY, [], T0, T0 + 1.5)
    assert tally.lost == []
    assert tally.lost_at_stop == [("e", 3), ("e", 5)]
