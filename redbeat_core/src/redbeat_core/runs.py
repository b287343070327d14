"""What hooks receive about a tick's runs: the due runs a plugin may skip or postpone, the
publishes, and the runs that were not published.

Times are Unix seconds (``time.time()``'s clock, floats with sub-millisecond precision), the
unit the store's scores use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, overload

import attrs

from redbeat_core.plugins import current_plugin

if TYPE_CHECKING:
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.policy import Resolved

__all__ = ["Decision", "Dispatched", "DueRun", "DueRuns", "Skipped"]


@attrs.frozen
class Dispatched:
    """One publish, as :func:`~redbeat_core.hookspecs.redbeat_after_dispatch` reports it.

    :ivar entry: the entry that was published (its ``last_run_at`` and ``total_run_count``
        already count this run).
    :ivar due_at: when the run was due, Unix seconds.
    :ivar published_at: when ``apply_async`` returned, Unix seconds. ``published_at - due_at``
        is the run's lateness.
    :ivar result: what ``apply_async`` returned (a Celery ``AsyncResult``, or None).
    """

    entry: RedBeatSchedulerEntry
    due_at: float
    published_at: float
    result: Any


@attrs.frozen
class DueRun:
    """A run a tick found due, before it is published.

    :ivar entry: the entry, as stored before this run.
    :ivar due_at: when the run is due, Unix seconds (up to ``redbeat_prepare_ahead`` after the
        tick's ``now``: an entry prepared ahead is published at its due time).
    :ivar dropped: for a catch-up (``misfire="run_all"``) that missed more due times than
        ``redbeat_misfire_limit``: this run stands for that many older due times left out, and
        ``due_at`` is the oldest missed due time. 0 for every ordinary run. RedBeat's
        ``redbeat.policies`` plugin skips such a run; a plugin deciding first may let it run.
    :ivar policy: the entry's scheduling policy over the app's defaults, as the tick resolved
        it (:class:`~redbeat_core.policy.Resolved`); None for Celery's behaviour.
    """

    entry: RedBeatSchedulerEntry
    due_at: float
    dropped: int = 0
    policy: Resolved | None = None

    @property
    def name(self) -> str:
        """The entry's name (what ``maint-*``-style rules match)."""
        return self.entry.name


@attrs.frozen
class Decision:
    """What a plugin decided about a due run.

    :ivar action: ``"skip"`` (this due time does not run; the schedule moves on to the next one,
        and the run is not counted) or ``"postpone"`` (the run waits until ``until``).
    :ivar reason: why, in the plugin's words; logged and shown to observers.
    :ivar plugin: the name of the plugin that decided (None when decided outside a hook).
    :ivar until: for ``"postpone"``, the new due time, Unix seconds; None for ``"skip"``.
    """

    action: Literal["skip", "postpone"]
    reason: str
    plugin: str | None
    until: float | None = None


@attrs.frozen
class Skipped:
    """A due run that was not published because a plugin decided so, as
    :func:`~redbeat_core.hookspecs.redbeat_runs_skipped` reports it once the decision is
    stored.

    :ivar entry: the entry.
    :ivar due_at: when the run was due, Unix seconds.
    :ivar decision: what was decided, by which plugin and why.
    """

    entry: RedBeatSchedulerEntry
    due_at: float
    decision: Decision


class DueRuns(Sequence[DueRun]):
    """The runs due in one tick, in due order: what ``redbeat_decide_runs`` receives. A
    sequence of :class:`DueRun` (iterate, index, ``len``).

    A plugin calls :meth:`skip` or :meth:`postpone` for runs that must not be published now.
    The first decision about a run stands (a later one is ignored and the call returns False),
    so plugins ordered first (``tryfirst``) take precedence; :meth:`decision` tells a plugin
    what an earlier one decided. Runs nobody decided about are published.
    """

    def __init__(self, runs: Sequence[DueRun], *, now: float) -> None:
        self._runs = tuple(runs)
        self._ids = {id(run) for run in self._runs}
        self._now = now
        self._decisions: dict[int, Decision] = {}

    @property
    def now(self) -> float:
        """The tick's clock, Unix seconds: a postponed run must be due after it."""
        return self._now

    # ------------------------------------------------------------------ Sequence

    @overload
    def __getitem__(self, index: int) -> DueRun: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[DueRun]: ...
    def __getitem__(self, index: int | slice) -> DueRun | Sequence[DueRun]:
        return self._runs[index]

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[DueRun]:
        return iter(self._runs)

    # ------------------------------------------------------------------ deciding

    def skip(self, run: DueRun, reason: str) -> bool:
        """Do not publish ``run``: its due time passes without a run, the entry moves on to
        its next due time and its run count stays. False when another plugin already decided."""
        return self._decide(run, Decision("skip", _reason(reason), current_plugin()))

    def postpone(self, run: DueRun, until: float | datetime, reason: str) -> bool:
        """Publish ``run`` at ``until`` (Unix seconds or an aware datetime) instead of now:
        the entry is due again then, with its run count unchanged. ``until`` must be after the
        tick's :attr:`now`. False when another plugin already decided."""
        when = until.timestamp() if isinstance(until, datetime) else float(until)
        if not math.isfinite(when) or when <= self.now:
            msg = f"postpone {run.name!r} to a time after now ({self.now:.3f}), got {until!r}"
            raise ValueError(msg)
        return self._decide(run, Decision("postpone", _reason(reason), current_plugin(), when))

    def decision(self, run: DueRun) -> Decision | None:
        """What was decided about ``run`` so far, or None."""
        return self._decisions.get(id(run))

    @property
    def decided(self) -> dict[int, Decision]:
        """Every decision so far, by ``id(run)`` (what the scheduler settles the tick with)."""
        return dict(self._decisions)

    def _decide(self, run: DueRun, decision: Decision) -> bool:
        if id(run) not in self._ids:
            msg = f"{run!r} is not one of this tick's due runs"
            raise ValueError(msg)
        if id(run) in self._decisions:
            return False
        self._decisions[id(run)] = decision
        return True


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        msg = f"a skip or postpone needs a reason (a non-empty string), got {reason!r}"
        raise ValueError(msg)
    return reason.strip()
