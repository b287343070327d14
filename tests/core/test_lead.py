"""The batch of a tick that wakes ahead of a due time: what it can prepare in the time left."""

from __future__ import annotations

from redbeat_core.lead import MIN_EARLY_BATCH, PrepareCost


def test_the_batch_is_what_fits_in_the_lead() -> None:
    cost = PrepareCost(fixed=0.002, per_entry=0.0002)
    assert cost.early_batch(0.05, 1000) == 240  # (50 ms - 2 ms) / 0.2 ms
    assert cost.early_batch(1.0, 1000) == 1000  # never more than a full batch
    assert cost.early_batch(0.001, 1000) == MIN_EARLY_BATCH  # never fewer than the minimum
    assert cost.early_batch(0.001, 10) == 10  # nor more than a (small) full batch


def test_it_learns_the_fixed_cost_from_small_ticks_and_the_rest_from_big_ones() -> None:
    cost = PrepareCost(fixed=0.002, per_entry=0.0002)
    for _ in range(30):
        cost.learn(0.001, 3)  # small ticks: their round trips
    assert abs(cost.fixed - 0.001) < 1e-5
    for _ in range(30):
        cost.learn(0.001 + 500 * 0.0004, 500)  # slower entries than assumed
    assert abs(cost.per_entry - 0.0004) < 1e-6
    assert cost.early_batch(0.05, 1000) == 122  # (50 ms - 1 ms) / 0.4 ms


def test_nonsense_measurements_teach_nothing() -> None:
    cost = PrepareCost(fixed=0.002, per_entry=0.0002)
    cost.learn(-1.0, 500)
    cost.learn(0.5, 0)
    assert (cost.fixed, cost.per_entry) == (0.002, 0.0002)
