"""The tick's pure steps: plan what the claimed entries need, then settle the decisions.

``plan_tick`` is a function of the claimed records, the codec, the app and the tick's clock:
it decodes each entry with the tick's clock, asks Celery's schedule whether it is due, and says
what each entry needs (a run, a new due time, leaving the schedule, quarantine). ``settle``
turns a plan and the plugins' decisions into what to store and what to publish. Neither does
I/O, reads a clock or changes anything it was given, so both are tested without a server; the
scheduler does the I/O at the two ends (claim, commit, publish).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from redbeat_core import records
from redbeat_core.budget import BudgetExceeded, PlanningBudget
from redbeat_core.exceptions import EntryDecodeError, InvalidEntryError
from redbeat_core.runs import Decision, DueRun, Skipped
from redbeat_core.typing import EntryUpdate, Quarantine, StoredEntry

if TYPE_CHECKING:
    from redbeat_core.codec import Codec
    from redbeat_core.entry import RedBeatSchedulerEntry

__all__ = ["Plan", "PlannedRun", "Settled", "TickTime", "plan_tick", "settle"]


@attrs.frozen
class TickTime:
    """The tick's two clocks, each read once before planning.

    :ivar now: Unix seconds when the tick claimed (``time.time()``): entries with a score up to
        ``now + redbeat_prepare_ahead`` were claimed.
    :ivar schedule_now: the app's clock (``app.now()``) read once for the whole tick: what
        Celery's schedules compare with (reading it per entry was a fifth of planning).
    """

    now: float
    schedule_now: datetime
    _schedule_at: float = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_schedule_at", self.schedule_now.timestamp())

    def clock_at(self, moment: float) -> Callable[[], datetime]:
        """The schedule clock stopped at Unix time ``moment``: an entry prepared ahead is
        judged at its due time, as if the beat had woken exactly then, so it keeps its phase.
        Placed relative to ``schedule_now``'s reading, not to ``now`` (read before the claim's
        round trip): otherwise every run would land that much late, and the ms rounding of the
        score would make it 1 ms of drift per run."""
        if moment == self.now:
            at = self.schedule_now
        else:
            at = self.schedule_now + timedelta(seconds=moment - self._schedule_at)
        return lambda: at


@attrs.frozen
class PlannedRun:
    """A due run and what ``is_due`` said about it.

    :ivar name: the entry's name as stored (its key), which the commit addresses whatever
        name the definition claims.
    :ivar run: the run, as plugins see it.
    :ivar ran_at: the schedule-clock instant the run counts as (its due time when prepared
        ahead, the tick's instant otherwise): the entry's ``last_run_at`` after it.
    :ivar next_score: the entry's next due time once this due time is dealt with (run or
        skipped), Unix seconds; None when its schedule has no further runs.
    """

    name: str
    run: DueRun
    ran_at: datetime
    next_score: float | None


@attrs.frozen
class Plan:
    """What the claimed entries need, before any plugin decides.

    :ivar runs: the due runs, in due order.
    :ivar updates: changes for the entries that do not run now (not yet due, disabled,
        finished, deleted behind our back, a next run that could not be computed).
    :ivar quarantine: entries that cannot be scheduled, with the reason.
    :ivar missing: names that were scheduled but are not stored (removed from the schedule).
    :ivar unplanned: how many claimed entries, the last ones, were left unplanned because the
        tick's planning budget ran out (still due: the next tick claims them again).
    """

    runs: tuple[PlannedRun, ...] = ()
    updates: tuple[EntryUpdate, ...] = ()
    quarantine: tuple[Quarantine, ...] = ()
    missing: tuple[str, ...] = ()
    unplanned: int = 0


def plan_tick(
    claimed: Sequence[StoredEntry],
    *,
    app: Any,
    codec: Codec,
    time: TickTime,
    entry_class: type[RedBeatSchedulerEntry],
    strict_tasks: bool = False,
    budget: PlanningBudget | None = None,
) -> Plan:
    """Decode the claimed entries and decide, for each, what it needs.

    :param claimed: what the store's claim returned, in due order.
    :param app: the Celery app (entries belong to it; ``strict_tasks`` checks its tasks).
    :param codec: the app's codec.
    :param time: the tick's clocks.
    :param entry_class: the entry class to build (the scheduler's ``Entry``).
    :param strict_tasks: quarantine an entry whose task the app does not know
        (``redbeat_unknown_task = "quarantine"``).
    :param budget: time limits (:class:`~redbeat_core.budget.PlanningBudget`): an entry that
        takes longer than its share is quarantined, and planning stops once the tick's share is
        used (:attr:`Plan.unplanned` entries are left as they are, still due, for the next
        tick). None: no limit.

    Anything that fails while one entry is planned (decoding, its schedule's arithmetic, its
    next due time, running out of time) quarantines that entry with the reason: the schedule
    is pure computation, so what failed once fails every time, and retrying it would only
    repeat the failure while the entry never runs.
    """
    runs: list[PlannedRun] = []
    updates: list[EntryUpdate] = []
    quarantine: list[Quarantine] = []
    missing: list[str] = []
    unplanned = 0
    for index, stored in enumerate(claimed):
        if budget is not None and index and budget.exhausted():
            unplanned = len(claimed) - index
            break
        try:
            if budget is not None:
                budget.start_entry()
            outcome = _plan_entry(stored, app, codec, time, entry_class, strict_tasks)
            if budget is not None:
                budget.end_entry()
        except BudgetExceeded as exc:
            if budget is not None:
                budget.end_entry()
            outcome = Quarantine(
                stored.name,
                f"planning it {exc} (redbeat_entry_time_budget): its schedule needs too much "
                "work to find its next run (a rule that never matches?)",
            )
        if isinstance(outcome, PlannedRun):
            runs.append(outcome)
        elif isinstance(outcome, Quarantine):
            quarantine.append(outcome)
        else:
            updates.append(outcome)
            if stored.definition is None:
                missing.append(stored.name)
    return Plan(
        runs=tuple(runs),
        updates=tuple(updates),
        quarantine=tuple(quarantine),
        missing=tuple(missing),
        unplanned=unplanned,
    )


def _plan_entry(
    stored: StoredEntry,
    app: Any,
    codec: Codec,
    time: TickTime,
    entry_class: type[RedBeatSchedulerEntry],
    strict_tasks: bool,
) -> PlannedRun | EntryUpdate | Quarantine:
    """What one claimed entry needs: a run, an update, or quarantine (see :func:`plan_tick`)."""
    # Updates address the stored key's name, whatever name the definition claims.
    name = stored.name
    now = time.now
    due_at = stored.score if stored.score is not None else now
    run_at = max(now, due_at)
    if stored.definition is None:
        return EntryUpdate(name, None, None)  # scheduled but deleted behind our back
    entry = _decode(stored, app, codec, time.clock_at(run_at), entry_class, strict_tasks)
    if isinstance(entry, Quarantine):
        return entry
    if not entry.enabled or entry.paused:  # out of the schedule (re-added behind our back)
        return EntryUpdate(name, None, None)
    try:
        is_due, next_time_to_run = entry.is_due()
        ran_at = entry.default_now()
        next_score = entry.score_after_run(next_time_to_run, ran_at=ran_at) if is_due else None
    except Exception as exc:  # the schedule's own arithmetic: this entry's fault alone
        reason = (  # a schedule the beat refuses to run (a zero interval) says why itself
            exc.reason
            if isinstance(exc, InvalidEntryError)
            else f"cannot compute its next run: {exc!r}"
        )
        return Quarantine(name, reason)
    if not is_due:
        # The score said due but the schedule says "not yet" (a whole-second score written
        # by celery-redbeat, or clock skew): store the precise due time.
        retry_at = None if next_time_to_run is None else run_at + next_time_to_run
        return EntryUpdate(name, None, retry_at)
    return PlannedRun(name, DueRun(entry, due_at), ran_at, next_score)


def _decode(
    stored: StoredEntry,
    app: Any,
    codec: Codec,
    clock: Callable[[], datetime],
    entry_class: type[RedBeatSchedulerEntry],
    strict_tasks: bool,
) -> RedBeatSchedulerEntry | Quarantine:
    """The claimed entry, judged by ``clock``, or why it must be quarantined."""
    name = stored.name
    try:
        entry = records.decode_entry(
            stored, app=app, codec=codec, entry_class=entry_class, clock=clock
        )
    except EntryDecodeError as exc:
        return Quarantine(name, exc.reason)
    except Exception as exc:  # anything else building the entry: still this entry's fault
        return Quarantine(name, f"cannot build the entry: {exc!r}")
    if strict_tasks and entry.task not in app.tasks:
        return Quarantine(
            name,
            f"task {entry.task!r} is not registered in this beat's app "
            "(redbeat_unknown_task='quarantine')",
        )
    return entry


@attrs.frozen
class Settled:
    """A plan with the plugins' decisions applied: what to store and what to publish.

    :ivar publish: the runs to publish, in due order: the entry's stored name, the entry
        stamped with its run, and its due time (Unix seconds).
    :ivar updates: every change the tick commits (the plan's, the runs', the skips').
    :ivar skipped: the runs a plugin skipped or postponed.
    """

    publish: tuple[tuple[str, RedBeatSchedulerEntry, float], ...] = ()
    updates: tuple[EntryUpdate, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    #: The runs of :attr:`publish` an operator asked for (run now), by index: who asked.
    manual: Mapping[int, str | None] = attrs.field(factory=dict)

    def with_manual(
        self, runs: Sequence[tuple[str, RedBeatSchedulerEntry, float, str | None]]
    ) -> Settled:
        """The same tick, with run-now runs published after the scheduled ones."""
        if not runs:
            return self
        first = len(self.publish)
        manual = dict(self.manual)
        manual.update({first + i: by for i, (_, _, _, by) in enumerate(runs)})
        publish = self.publish + tuple((name, entry, at) for name, entry, at, _ in runs)
        return attrs.evolve(self, publish=publish, manual=manual)

    def leave_due(self, retry_at: Mapping[str, float]) -> Settled:
        """The same tick, with the runs named in ``retry_at`` left unrun: their entries keep
        their meta and are due again at the time given (at-least-once, for runs whose publish
        failed or never happened: they must run again, not be counted as run)."""
        if not retry_at:
            return self
        updates = tuple(
            EntryUpdate(u.name, None, retry_at[u.name]) if u.name in retry_at else u
            for u in self.updates
        )
        publish = tuple(item for item in self.publish if item[0] not in retry_at)
        return Settled(publish=publish, updates=updates, skipped=self.skipped)  # counts only


def settle(plan: Plan, decisions: Mapping[int, Decision], *, codec: Codec) -> Settled:
    """Apply ``decisions`` (by ``id(run)``, from :class:`~redbeat_core.runs.DueRuns`) to
    ``plan``.

    A run goes ahead: its entry is stamped (``last_run_at`` = the run, one more run) and its
    next due time follows. A skipped run advances the schedule the same way but is not counted
    (``last_run_at`` is the schedule's anchor: the last due time dealt with). A postponed run
    keeps its meta and is due again at the time the plugin gave.
    """
    publish: list[tuple[str, RedBeatSchedulerEntry, float]] = []
    updates = list(plan.updates)
    skipped: list[Skipped] = []
    for planned in plan.runs:
        run = planned.run
        entry = run.entry
        decision = decisions.get(id(run))
        if decision is not None:
            skipped.append(Skipped(entry, run.due_at, decision))
            if decision.action == "postpone":
                updates.append(EntryUpdate(planned.name, None, decision.until))
                continue
        stamped = entry.with_run(planned.ran_at, counted=decision is None)
        meta = records.encode_meta(codec, stamped.last_run_at, stamped.total_run_count)
        updates.append(EntryUpdate(planned.name, meta, planned.next_score))
        if decision is None:
            publish.append((planned.name, stamped, run.due_at))
    return Settled(publish=tuple(publish), updates=tuple(updates), skipped=tuple(skipped))
