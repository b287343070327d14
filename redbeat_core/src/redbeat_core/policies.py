"""The ``redbeat.policies`` plugin: the scheduling policies' settings, and the skips they
decide (a misfire, a missed starting deadline, the catch-ups beyond ``redbeat_misfire_limit``).

It is an ordinary plugin on the ``redbeat_decide_runs`` hook, registered after
``redbeat.defaults``: ``REDBEAT_BLOCK_PLUGINS=redbeat.policies`` turns the skips off (the
settings then keep their built-in defaults), and a plugin with a ``tryfirst`` implementation
decides before it (the first decision about a run stands). What the policies change about due
times (bounds, jitter, one run per missed due time) is planned by the tick itself, see
:mod:`redbeat_core.policy`.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from redbeat_core.blackouts import (
    MAX_BLACKOUT,
    STORED_REFRESH,
    Calendar,
    CalendarStore,
    parse_calendars,
    parse_stored,
)
from redbeat_core.exceptions import RedBeatError
from redbeat_core.hookspecs import hookimpl
from redbeat_core.policy import (
    BLACKOUT_ACTIONS,
    DEFAULT_MISFIRE_GRACE,
    DEFAULT_MISFIRE_LIMIT,
    MISFIRE_POLICIES,
    OVERLAP_POLICIES,
    Resolved,
)
from redbeat_core.runtime import get_runtime
from redbeat_core.settings import (
    CORE_OWNER,
    InvalidValue,
    Setting,
    SettingRegistry,
    boolean,
    choice,
    integer,
    optional,
    seconds,
)

logger = logging.getLogger("celery.beat")

if TYPE_CHECKING:
    from redbeat_core.runs import DueRun, DueRuns
    from redbeat_core.scheduler import RedBeatScheduler

PLUGIN_NAME: Final = "redbeat.policies"
IDEMPOTENT_SETTING: Final = "redbeat_idempotent_task_ids"


def _names(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(n, str) and n for n in value):
        raise InvalidValue("a list of blackout calendar names (redbeat_calendars)")
    return list(value)


POLICY_SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "redbeat_misfire",
        "str",
        "run_once",
        "What an entry does when the beat finds due times it missed (after downtime, an "
        "outage, a pause), unless the entry sets its own policy.misfire: 'run_once' runs once "
        "(Celery's behaviour), 'skip' drops a run that is later than redbeat_misfire_grace and "
        "goes on to the next future due time, 'run_all' runs once per missed due time, oldest "
        "first (at most redbeat_misfire_limit).",
        parse=choice(*MISFIRE_POLICIES),
    ),
    Setting(
        "redbeat_misfire_grace",
        "float (s)",
        DEFAULT_MISFIRE_GRACE,
        "How late a run may be and still run under misfire 'skip': a restart or a failover is "
        "not an outage to skip runs over.",
        parse=seconds(allow_zero=True),
    ),
    Setting(
        "redbeat_misfire_limit",
        "int",
        DEFAULT_MISFIRE_LIMIT,
        "Most runs one catch-up publishes under misfire 'run_all': the newest ones; the older "
        "missed due times are skipped and recorded as one skip.",
        parse=integer(minimum=1),
    ),
    Setting(
        "redbeat_starting_deadline",
        "float (s) | None",
        None,
        "Default for policy.starting_deadline: a run that would start more than this many "
        "seconds after its due time is skipped and recorded as missed. None: no deadline.",
        parse=optional(seconds()),
    ),
    Setting(
        "redbeat_jitter",
        "float (s)",
        0.0,
        "Default for policy.jitter: each run is delayed by up to this many seconds, by an "
        "amount fixed by the entry's name and the due time (every beat computes the same, and "
        "the stored next run is the real one). Spreads entries that share a due time.",
        parse=seconds(allow_zero=True),
    ),
    Setting(
        "redbeat_overlap",
        "str",
        "allow",
        "Default for policy.overlap: what a due run does while the entry's previous run is "
        "still queued or running. 'allow' publishes it (Celery's behaviour), 'skip' skips it, "
        "'buffer_one' publishes it only when no run is queued (at most one waits behind the "
        "running one). Needs the workers to record what runs (redbeat_track_runs); a beat "
        "that finds no recording worker publishes as with 'allow' and says so.",
        parse=choice(*OVERLAP_POLICIES),
    ),
    Setting(
        "redbeat_calendars",
        "dict",
        {},
        "Blackout calendars by name, for entries' policy.blackouts and redbeat_blackouts. Each "
        "is a dict with 'cron' (crontab expressions 'MIN HOUR DAY MONTH WEEKDAY', one or a list: "
        "every matching minute is blacked out), 'between' (a list of [start, end] ISO 8601 "
        "times) and 'tz' (the time zone both are read in; default UTC).",
        parse=parse_calendars,
    ),
    Setting(
        "redbeat_blackouts",
        "list[str]",
        [],
        "Default for policy.blackouts: the calendars every entry without its own list obeys.",
        parse=_names,
    ),
    Setting(
        "redbeat_blackouts_action",
        "str",
        "skip",
        "Default for policy.blackout_action: a run due inside a blackout is skipped ('skip') "
        "or postponed to the blackout's end ('postpone').",
        parse=choice(*BLACKOUT_ACTIONS),
    ),
    Setting(
        IDEMPOTENT_SETTING,
        "bool",
        False,
        "Give each scheduled run a task id computed from the entry's key and due time (a "
        "UUID 5), so a run published twice (at-least-once after a failover) carries the same "
        "id and a worker or result backend can drop the second. An id in the entry's options "
        "is kept.",
        parse=boolean,
    ),
)


@hookimpl
def redbeat_register_settings(registry: SettingRegistry) -> None:
    registry.add(*POLICY_SETTINGS, owner=CORE_OWNER)


@hookimpl(tryfirst=True)
def redbeat_decide_runs(scheduler: RedBeatScheduler, runs: DueRuns) -> None:
    """Skip the runs the entries' policies say must not run: past their starting deadline,
    late beyond the grace under misfire 'skip', standing for the catch-ups left out, or inside
    a blackout (skipped, or postponed to its end)."""
    defaults = get_runtime(scheduler.app).policy_defaults
    now = runs.now
    for run in runs:
        resolved = run.policy  # resolved by the tick's planning
        if resolved is None:
            continue
        reason = _skip_reason(run, now, resolved)
        if reason is not None:
            runs.skip(run, reason)
        elif resolved.blackouts:
            calendars = defaults.calendars
            if any(name not in calendars for name in resolved.blackouts):
                calendars = {**_stored(scheduler), **calendars}
            _blackout(runs, run, resolved, calendars)


def _skip_reason(run: DueRun, now: float, resolved: Resolved) -> str | None:
    if run.dropped:
        return (
            f"misfire: {run.dropped} older missed due times left out of the catch-up "
            "(redbeat_misfire_limit)"
        )
    late = now - run.due_at
    deadline = resolved.starting_deadline
    if deadline is not None and late > deadline:
        return (
            f"deadline: it would start {late:.1f}s after its due time "
            f"(starting_deadline={deadline:g}s)"
        )
    if resolved.misfire == "skip" and late > resolved.misfire_grace:
        return (
            f"misfire: {late:.1f}s late, beyond redbeat_misfire_grace "
            f"({resolved.misfire_grace:g}s), with misfire='skip'"
        )
    return None


def _blackout(
    runs: DueRuns, run: DueRun, resolved: Resolved, calendars: Mapping[str, Calendar]
) -> None:
    """Skip or postpone ``run`` when it would be published inside one of its calendars (at
    its due time, or now when it is overdue: an overdue run must not go out mid-blackout)."""
    at = max(runs.now, run.due_at)
    known = [calendars[name] for name in resolved.blackouts if name in calendars]
    for name in resolved.blackouts:
        if name not in calendars:
            _missing_calendar(name, run.name)
    hit = next(((c, part) for c in known if (part := c.covering(at)) is not None), None)
    if hit is None:
        return
    calendar, part = hit
    reason = f"blackout: in {calendar.name!r} ({part}, {calendar.zone})"
    if resolved.blackout_action == "skip":
        runs.skip(run, reason)
        return
    until = _blackout_end(known, at)
    if until is None:
        runs.skip(run, f"{reason}; it does not end within {MAX_BLACKOUT.days} days")
    else:
        runs.postpone(run, until, reason)


def _blackout_end(calendars: Sequence[Calendar], at: float) -> float | None:
    """The first instant from ``at`` on that none of ``calendars`` covers: overlapping or
    touching calendars make one blackout (a run postponed to the end of one would only be
    postponed again)."""
    moment: float | None = at
    for _ in range(len(calendars) * 8 + 1):
        covering = [c for c in calendars if moment is not None and c.covering(moment)]
        if not covering or moment is None:
            return moment
        for calendar in covering:
            moment = calendar.end_after(moment) if moment is not None else None
    return None


#: The stored calendars each beat read, and when (monotonic seconds).
_stored_cache: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, Calendar]]] = (
    weakref.WeakKeyDictionary()
)


def _stored(scheduler: RedBeatScheduler) -> dict[str, Calendar]:
    """The stored calendars, read at most every :data:`STORED_REFRESH` seconds per beat; the
    last ones read (or none) when the store cannot be read now."""
    store = scheduler.store
    if not isinstance(store, CalendarStore):
        return {}
    cached = _stored_cache.get(scheduler)
    if cached is not None and time.monotonic() - cached[0] < STORED_REFRESH:
        return cached[1]
    try:
        calendars = parse_stored(store.stored_calendars())
    except RedBeatError as exc:
        logger.warning("beat: cannot read the stored blackout calendars: %s", exc)
        return cached[1] if cached is not None else {}
    _stored_cache[scheduler] = (time.monotonic(), calendars)
    return calendars


_missing_warned: set[str] = set()


def _missing_calendar(calendar: str, entry: str) -> None:
    if calendar not in _missing_warned:
        _missing_warned.add(calendar)
        logger.error(
            "beat: entry %r names the blackout calendar %r, which redbeat_calendars "
            "does not declare and none is stored: its runs are not blacked out by it. Declare "
            "or store it, or fix the entry's policy.blackouts.",
            entry,
            calendar,
        )
