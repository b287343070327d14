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

from typing import TYPE_CHECKING, Final

from redbeat_core.hookspecs import hookimpl
from redbeat_core.policy import (
    DEFAULT_MISFIRE_GRACE,
    DEFAULT_MISFIRE_LIMIT,
    MISFIRE_POLICIES,
    OVERLAP_POLICIES,
    Resolved,
    resolve,
)
from redbeat_core.runtime import get_runtime
from redbeat_core.settings import (
    CORE_OWNER,
    Setting,
    SettingRegistry,
    boolean,
    choice,
    integer,
    optional,
    seconds,
)

if TYPE_CHECKING:
    from redbeat_core.runs import DueRun, DueRuns
    from redbeat_core.scheduler import RedBeatScheduler

PLUGIN_NAME: Final = "redbeat.policies"
IDEMPOTENT_SETTING: Final = "redbeat_idempotent_task_ids"

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
    late beyond the grace under misfire 'skip', or standing for the catch-ups left out."""
    defaults = get_runtime(scheduler.app).policy_defaults
    now = runs.now
    for run in runs:
        entry = run.entry
        if entry.policy is None and defaults.inert and not run.dropped:
            continue
        reason = _skip_reason(run, now, resolve(entry.policy, defaults))
        if reason is not None:
            runs.skip(run, reason)


def _skip_reason(run: DueRun, now: float, resolved: Resolved | None) -> str | None:
    if run.dropped:
        return (
            f"misfire: {run.dropped} older missed due times left out of the catch-up "
            "(redbeat_misfire_limit)"
        )
    if resolved is None:
        return None
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
