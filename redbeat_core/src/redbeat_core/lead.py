"""How many entries a tick that wakes ahead of a due time may claim, so they are ready in time.

The leader wakes ``redbeat_prepare_ahead`` (50 ms) before the next due time, claims the entries
due by then, and prepares them (decode, next run, decisions, commit) so that their publishes
start at the due time. A burst of many entries due at the same instant used to miss that: the
tick claimed a full batch (1,000) and the first publish waited for all of them to be prepared,
about 100 ms after the due time on a loaded machine. :class:`PrepareCost` learns what preparing
costs here (a fixed part, the round trips, and a part per entry) and caps the batch of such a
tick at what fits in the time left; the rest of the burst is claimed by the next tick at once,
as any batch beyond the first is. Ticks for overdue entries claim full batches.
"""

from __future__ import annotations

import attrs

__all__ = ["PrepareCost"]

#: Fewest entries an early tick claims: below that, round trips dominate and a smaller claim
#: only adds ticks.
MIN_EARLY_BATCH = 50
#: Ticks with at least this many entries teach the cost per entry (fewer: the fixed cost).
LEARN_FROM = 50
#: Weight of the newest measurement in the running averages.
WEIGHT = 0.3


@attrs.define
class PrepareCost:
    """Running averages of the time from a tick's start to its first publish being ready."""

    #: Seconds a tick takes besides its entries (its round trips), learned from small ticks.
    fixed: float = 0.002
    #: Seconds each claimed entry adds (planning, decisions, its share of the commit); a
    #: conservative start until measured.
    per_entry: float = 0.0002

    def learn(self, seconds: float, entries: int) -> None:
        """A tick took ``seconds`` from its start to having ``entries`` ready to publish."""
        if entries <= 0 or seconds < 0:
            return
        if entries < LEARN_FROM:
            self.fixed += WEIGHT * (seconds - self.fixed)
            return
        each = max(0.0, seconds - self.fixed) / entries
        self.per_entry += WEIGHT * (each - self.per_entry)

    def early_batch(self, lead: float, batch_size: int) -> int:
        """The batch for a tick with ``lead`` seconds until the due time it woke for."""
        if self.per_entry <= 0:
            return batch_size
        fits = int((lead - self.fixed) / self.per_entry)
        return max(min(MIN_EARLY_BATCH, batch_size), min(batch_size, fits))
