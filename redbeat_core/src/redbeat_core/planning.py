"""The tick's pure steps: plan what the claimed entries need, then settle the decisions.

``plan_tick`` is a function of the claimed records, the codec, the app and the tick's clock:
it decodes each entry with the tick's clock, asks Celery's schedule whether it is due, and says
what each entry needs (a run, a new due time, leaving the schedule, quarantine). ``settle``
turns a plan and the plugins' decisions into what to store and what to publish. Neither does
I/O, reads a clock or changes anything it was given, so both are tested without a server; the
scheduler does the I/O at the two ends (claim, commit, publish).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs
from celery.schedules import schedule as interval

from redbeat_core import records
from redbeat_core.budget import BudgetExceeded, PlanningBudget
from redbeat_core.entry import schedule_at, shift
from redbeat_core.exceptions import EntryDecodeError, InvalidEntryError
from redbeat_core.policy import (
    MAX_CATCH_UP_STEPS,
    PolicyDefaults,
    Resolved,
    finish_reason,
    jitter_offset,
)
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
            at = shift(self.schedule_now, timedelta(seconds=moment - self._schedule_at))
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
    #: This run is the entry's last (its policy's ``max_runs``): once it runs, not when it is
    #: skipped, the entry leaves the schedule, finished.
    finishes: bool = False


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
    defaults: PolicyDefaults | None = None,
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
    :param defaults: the app-wide scheduling policy (:mod:`redbeat_core.policy`); None:
        Celery's behaviour for entries without a policy of their own.

    Anything that fails while one entry is planned (decoding, its schedule's arithmetic, its
    next due time, running out of time) quarantines that entry with the reason: the schedule
    is pure computation, so what failed once fails every time, and retrying it would only
    repeat the failure while the entry never runs.
    """
    defaults = defaults or PolicyDefaults()
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
            outcome = _plan_entry(stored, app, codec, time, entry_class, strict_tasks, defaults)
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
        elif isinstance(outcome, tuple):  # a catch-up (misfire="run_all"), oldest first
            runs.extend(outcome)
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
    defaults: PolicyDefaults,
) -> PlannedRun | tuple[PlannedRun, ...] | EntryUpdate | Quarantine:
    """What one claimed entry needs: a run (several for a catch-up), an update, or quarantine
    (see :func:`plan_tick`)."""
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
        resolved = entry.resolved_policy(defaults)
        if resolved is not None:
            return _plan_with_policy(name, entry, resolved, due_at, run_at)
        return _plan_due(name, entry, due_at, run_at)
    except Exception as exc:  # the schedule's own arithmetic: this entry's fault alone
        return Quarantine(name, _why_unplannable(exc))


def _plan_due(
    name: str, entry: RedBeatSchedulerEntry, due_at: float, run_at: float
) -> PlannedRun | EntryUpdate:
    """Celery's behaviour: the entry runs when its schedule says it is due."""
    is_due, next_time_to_run = entry.is_due()
    if not is_due:
        # The score said due but the schedule says "not yet" (a whole-second score written
        # by celery-redbeat, or clock skew): store the precise due time.
        retry_at = None if next_time_to_run is None else run_at + next_time_to_run
        return EntryUpdate(name, None, retry_at)
    ran_at = entry.default_now()
    next_score = entry.score_after_run(next_time_to_run, ran_at=ran_at)
    return PlannedRun(name, DueRun(entry, due_at), ran_at, next_score)


def _why_unplannable(exc: Exception) -> str:
    if isinstance(exc, InvalidEntryError):  # a schedule the beat refuses to run says why
        return exc.reason
    return f"cannot compute its next run: {exc!r}"


def _plan_with_policy(
    name: str,
    entry: RedBeatSchedulerEntry,
    resolved: Resolved,
    due_at: float,
    run_at: float,
) -> PlannedRun | tuple[PlannedRun, ...] | EntryUpdate:
    """:func:`_plan_entry` for an entry with a scheduling policy (:mod:`redbeat_core.policy`):
    its bounds, its jitter and, for ``misfire="run_all"``, one run per missed due time. The
    runs a policy skips (a misfire, a deadline, the catch-ups beyond the limit) are decided by
    the ``redbeat.policies`` plugin, so another plugin can replace that."""
    is_due, next_in = entry.is_due()
    at = entry.default_now()  # the tick's clock, in the app's time zone
    last = entry.last_run_at
    runs = entry.total_run_count or 0
    nominal = _place(name, entry, resolved, run_at, at)
    if isinstance(nominal, EntryUpdate):
        return nominal
    if resolved.misfire == "run_all" and last is not None:
        missed, dropped = _missed(entry, nominal, at, resolved.misfire_limit)
        if len(missed) > 1 or dropped:
            return _catch_up(name, entry, resolved, (nominal, dropped), missed, at)
    offset = jitter_offset(name, nominal, resolved.jitter) if last is not None else 0.0
    if offset and run_at + EPSILON < nominal + offset:  # claimed before its jittered time
        score = entry.policy_score(resolved, _like(nominal, at), overdue=False, runs=runs)
        return EntryUpdate(name, None, score)
    # A jittered run counts as run at its place in the schedule, so the jitter never drifts it
    # (on time within the score's millisecond rounding; a late one counts from when it runs).
    ran_at = at
    if offset:
        ran = run_at - offset
        ran_at = _like(nominal if ran - nominal <= SCORE_ROUNDING else ran, at)
    next_score = entry.score_after_run(
        next_in if is_due and not offset else None, ran_at=ran_at, resolved=resolved
    )
    finishes = resolved.max_runs is not None and runs + 1 >= resolved.max_runs
    # Due at its place in the schedule: a score written "due now" (by a save, a resume) hides
    # how late the run is, which the misfire and deadline policies judge.
    due = min(due_at, nominal + offset)
    return PlannedRun(name, DueRun(entry, due, policy=resolved), ran_at, next_score, finishes)


def _place(
    name: str, entry: RedBeatSchedulerEntry, resolved: Resolved, run_at: float, at: datetime
) -> float | EntryUpdate:
    """The due time the schedule gives the claimed run, before any jitter (its place in the
    schedule), within the policy's bounds; or the update for an entry that does not run now
    (finished, not started, not due yet)."""
    runs = entry.total_run_count or 0
    last = entry.last_run_at
    nominal = run_at if last is None else _due_after(entry, last, at)
    if resolved.start_at is not None and nominal < resolved.start_at:
        first = entry.first_due_from(resolved.start_at)
        if first is not None and first > run_at:
            score = entry.policy_score(resolved, _like(first, at), overdue=False, runs=runs)
            return EntryUpdate(name, None, score)
        nominal = math.inf if first is None else max(nominal, first)
    if math.isinf(nominal) or finish_reason(resolved, due=nominal, runs=runs):
        # Finished (no further run, past its end, or its last run done): out of the schedule.
        return EntryUpdate(name, None, None)
    if nominal > run_at + EPSILON:  # not due yet (a score written by another beat version)
        score = entry.policy_score(resolved, _like(nominal, at), overdue=False, runs=runs)
        return EntryUpdate(name, None, score)
    return nominal


#: The message header a catch-up run carries its due time in (``self.request.redbeat_due_at``).
DUE_AT_HEADER: Final = "redbeat_due_at"
#: Seconds of float error tolerated when a stored (millisecond) score is compared with a time.
EPSILON: Final = 1e-6
#: Scores are rounded up to the millisecond: a run claimed at its score is this close to it.
SCORE_ROUNDING: Final = 0.001


def _catch_up(
    name: str,
    entry: RedBeatSchedulerEntry,
    resolved: Resolved,
    left_out: tuple[float, int],
    missed: list[float],
    at: datetime,
) -> tuple[PlannedRun, ...]:
    """One run per missed due time, oldest first, each counted at its own due time and
    carrying it (the ``redbeat_due_at`` header); the last is followed by the entry's next due
    time. The older due times beyond ``redbeat_misfire_limit`` come first as one run standing
    for all of them (``DueRun.dropped``; ``left_out``: the oldest due time and how many), which
    the ``redbeat.policies`` plugin skips."""
    planned: list[PlannedRun] = []
    runs = entry.total_run_count or 0
    oldest, dropped = left_out
    if dropped:
        run = DueRun(entry, oldest, dropped=dropped, policy=resolved)
        planned.append(PlannedRun(name, run, _like(oldest, at), missed[0]))
    for index, due in enumerate(missed):
        ran_at = _like(due, at)
        if index < len(missed) - 1:
            next_score: float | None = missed[index + 1]
        else:
            next_score = entry.score_after_run(None, ran_at=ran_at, resolved=resolved)
        finishes = resolved.max_runs is not None and runs + index + 1 >= resolved.max_runs
        run = DueRun(_carrying_due_time(entry, ran_at), due, policy=resolved)
        planned.append(PlannedRun(name, run, ran_at, next_score, finishes))
        if finishes:
            break
    return tuple(planned)


def _carrying_due_time(entry: RedBeatSchedulerEntry, due: datetime) -> RedBeatSchedulerEntry:
    """A copy of ``entry`` whose publish carries ``due`` in the ``redbeat_due_at`` header
    (ISO 8601), which the task reads as ``self.request.redbeat_due_at``."""
    options = dict(entry.options or {})
    options["headers"] = {**(options.get("headers") or {}), DUE_AT_HEADER: due.isoformat()}
    carrying = object.__new__(type(entry))
    carrying.__dict__.update(entry.__dict__)
    carrying.options = options
    return carrying


def _due_after(entry: RedBeatSchedulerEntry, last: datetime, at: datetime) -> float:
    """The first due time after ``last`` by the entry's schedule, Unix seconds (``at`` is the
    clock the schedule reads; the answer does not depend on it)."""
    remaining: timedelta | None = schedule_at(entry.schedule, at).remaining_estimate(last)
    if remaining is None:
        return math.inf
    # To the microsecond, as datetimes are: the same due time from two different clocks (two
    # ticks, two beats) must be the same number, not one a float rounding away.
    return round(at.timestamp() + remaining.total_seconds(), 6)


def _missed(
    entry: RedBeatSchedulerEntry, first: float, at: datetime, limit: int
) -> tuple[list[float], int]:
    """The due times from ``first`` up to ``at``: the newest ``limit`` of them, and how many
    older ones are left out (intervals by arithmetic; other schedules step by step, at most
    :data:`MAX_CATCH_UP_STEPS`, the ones beyond left for the next tick)."""
    now = at.timestamp()
    schedule = entry.schedule
    if type(schedule) is interval and not schedule.relative:
        every = schedule.run_every.total_seconds()
        count = int((now + EPSILON - first) // every) + 1
        dropped = max(0, count - limit)
        return [first + (dropped + k) * every for k in range(count - dropped)], dropped
    found: list[float] = []
    due = first
    for _ in range(MAX_CATCH_UP_STEPS):
        if due > now + EPSILON:
            break
        found.append(due)
        after = _due_after(entry, _like(due, at), at)
        due = after if after > due else due + 1.0
    dropped = max(0, len(found) - limit)
    return found[dropped:], dropped


def _like(seconds: float, like: datetime) -> datetime:
    """Unix ``seconds`` as a datetime in ``like``'s time zone (Celery's crontab reads the
    fields of ``last_run_at`` in its own zone)."""
    return datetime.fromtimestamp(seconds, UTC).astimezone(like.tzinfo or UTC)


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


def any_policy(plan: Plan) -> bool:
    """Whether a run of ``plan`` has a scheduling policy to decide about (its entry's, or the
    app's, as planning resolved it)."""
    return any(p.run.policy is not None for p in plan.runs)


def settle(plan: Plan, decisions: Mapping[int, Decision], *, codec: Codec) -> Settled:
    """Apply ``decisions`` (by ``id(run)``, from :class:`~redbeat_core.runs.DueRuns`) to
    ``plan``.

    A run goes ahead: its entry is stamped (``last_run_at`` = the run, one more run) and its
    next due time follows (none once a run ``finishes`` the entry). A skipped run advances the
    schedule the same way but is not counted (``last_run_at`` is the schedule's anchor: the
    last due time dealt with). A postponed run keeps its meta and is due again at the time the
    plugin gave. An entry with several runs in the tick (a catch-up) gets one update, after its
    last run; a postponed run ends its runs for this tick.
    """
    publish: list[tuple[str, RedBeatSchedulerEntry, float]] = []
    skipped: list[Skipped] = []
    final: dict[str, EntryUpdate] = {}
    counts: dict[str, int] = {}
    stopped: set[str] = set()
    for planned in plan.runs:
        name = planned.name
        if name in stopped:
            continue
        run = planned.run
        entry = run.entry
        decision = decisions.get(id(run))
        if decision is not None:
            skipped.append(Skipped(entry, run.due_at, decision))
            if decision.action == "postpone":
                meta = final[name].meta if name in final else None
                final[name] = EntryUpdate(name, meta, decision.until)
                stopped.add(name)
                continue
        counted = decision is None
        stamped = entry.with_run(planned.ran_at, counted=False)
        stamped.total_run_count = counts.get(name, entry.total_run_count or 0) + counted
        counts[name] = stamped.total_run_count
        meta = records.encode_meta(codec, stamped.last_run_at, stamped.total_run_count)
        finished = counted and planned.finishes
        final[name] = EntryUpdate(name, meta, None if finished else planned.next_score)
        if finished:
            stopped.add(name)
        if counted:
            publish.append((name, stamped, run.due_at))
    updates = (*plan.updates, *final.values())
    return Settled(publish=tuple(publish), updates=updates, skipped=tuple(skipped))
