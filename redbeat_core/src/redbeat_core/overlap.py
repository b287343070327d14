"""The ``redbeat.overlap`` plugin: the overlap policies (``skip``, ``buffer_one``) and the settings
of the workers' run tracking (:mod:`redbeat_core.running`).

Its ``redbeat_decide_runs`` is ``trylast``: it sees only the runs no other plugin skipped, and
reserves each of those whose entry has an overlap policy in one round trip
(:meth:`~redbeat_core.running.RunTracker.reserve_runs`), before anything is published, so a run
is recorded as queued before a worker can start it. A reserved run is published with a task id
fixed now (the idempotent one with ``redbeat_idempotent_task_ids``) and the entry's name in the
``redbeat_entry`` header. A run that may not go while its previous run is queued or running is
skipped with the reason (``skip``), or buffered (``buffer_one``): postponed and checked again
every :data:`BUFFER_RECHECK` seconds, and published once the previous run is done. The entry is
not due again meanwhile (a postponed run keeps its state), so the due times that pass while one
run is buffered are not run: at most one waits. A reserved run that is then not published (the
beat lost its lease) counts as queued until ``redbeat_queued_timeout``.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Final

from redbeat_core import running
from redbeat_core.exceptions import RedBeatError
from redbeat_core.hookspecs import hookimpl
from redbeat_core.idempotency import task_id_for
from redbeat_core.policies import IDEMPOTENT_SETTING
from redbeat_core.running import ENTRY_HEADER, Reservation, Reserved, RunTracker
from redbeat_core.runtime import get_runtime
from redbeat_core.settings import CORE_OWNER, SettingRegistry

if TYPE_CHECKING:
    from redbeat_core.runs import DueRun, DueRuns
    from redbeat_core.scheduler import RedBeatScheduler

logger = logging.getLogger("celery.beat")

PLUGIN_NAME: Final = "redbeat.overlap"
#: Seconds between the checks of a buffered run (``buffer_one``) for its previous run's end.
BUFFER_RECHECK: Final = 1.0
#: What each beat has warned about (once until it works again), by scheduler.
_warned: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


@hookimpl
def redbeat_register_settings(registry: SettingRegistry) -> None:
    registry.add(*running.settings(), owner=CORE_OWNER)


@hookimpl(trylast=True)
def redbeat_decide_runs(scheduler: RedBeatScheduler, runs: DueRuns) -> None:
    """Reserve the runs of entries with an overlap policy; skip those it does not let go."""
    runtime = get_runtime(scheduler.app)
    wanted = _wanted(runs)
    if not wanted:
        return
    store = scheduler.store
    warned = _warned.setdefault(scheduler, set())
    if not isinstance(store, RunTracker):
        _warn_once(
            warned,
            type(store).__name__,
            f"beat: {type(store).__name__} records no runs (RunTracker): entries with an "
            "overlap policy are published as with overlap 'allow'",
        )
        return
    found = _reserve(store, wanted, runtime, warned)
    if found is None:
        return
    for (run, mode), reserved in zip(wanted, found, strict=True):
        if reserved.allowed:
            continue
        reason = _reason(mode, reserved.queued, reserved.running)
        if mode == "skip":
            runs.skip(run, reason)
        else:  # buffer_one: this run waits, re-checked until the previous one is done
            runs.postpone(run, runs.now + BUFFER_RECHECK, reason)


def _wanted(runs: DueRuns) -> list[tuple[DueRun, str]]:
    """The runs no plugin decided about whose entry has an overlap policy, with it (as the
    tick's planning resolved it)."""
    return [
        (run, run.policy.overlap)
        for run in runs
        if run.policy is not None and run.policy.overlap != "allow" and not runs.decision(run)
    ]


def _reserve(
    store: RunTracker, wanted: list[tuple[DueRun, str]], runtime: Any, warned: set[str]
) -> list[Reserved] | None:
    """Fix the runs' task ids and headers and reserve them; None when they go unreserved (no
    worker records runs yet, or the store refused), as with overlap 'allow'. Their header
    still names their entry, so the worker that runs one starts recording runs."""
    settings = runtime.config.settings
    queued_for = float(settings.get(running.QUEUED_SETTING, running.DEFAULT_QUEUED_TIMEOUT))
    idempotent = bool(settings.get(IDEMPOTENT_SETTING))
    reservations = []
    for run, mode in wanted:
        task_id = _fix_task_id(run, idempotent, runtime.config.key_for)
        expires = _expires(run.entry.options)
        timeout = min(queued_for, expires) if expires is not None else queued_for
        reservations.append(Reservation(run.entry.name, task_id, mode, timeout))
    try:
        found = store.reserve_runs(reservations)
    except RedBeatError as exc:  # refused (ACL), unreachable: the tick goes on without it
        _warn_once(
            warned,
            "reserve-failed",
            f"beat: cannot reserve the runs of entries with an overlap policy ({exc}); they "
            "are published as with overlap 'allow' until it works again",
        )
        return None
    warned.discard("reserve-failed")
    if found is None and "no-tracker" not in warned:
        warned.add("no-tracker")
        logger.info(
            "beat: no worker records runs yet (a worker with RedBeat installed and "
            "redbeat_track_runs on does from the first run of an entry with an overlap policy "
            "it starts): until one does, such entries are published as with overlap 'allow'"
        )
    elif found is not None:
        warned.discard("no-tracker")
    return found


def _fix_task_id(run: DueRun, idempotent: bool, key_for: Any) -> str:
    """The run's task id, fixed before it is published (the worker's marks name it), and the
    entry's name in the ``redbeat_entry`` header."""
    entry = run.entry
    options = dict(entry.options or {})
    task_id = options.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        task_id = task_id_for(key_for(entry.name), run.due_at) if idempotent else str(uuid.uuid4())
    options["task_id"] = task_id
    entry.options = options
    _name_entry(entry)
    return task_id


def _name_entry(entry: Any) -> None:
    """The entry's name in the ``redbeat_entry`` header of its run: what workers record."""
    options = dict(entry.options or {})
    options["headers"] = {**(options.get("headers") or {}), ENTRY_HEADER: entry.name}
    entry.options = options


def _expires(options: Any) -> float | None:
    """The entry's ``expires`` option in seconds, when it is a number: a run that expired
    unstarted is dropped by the worker, so it stops counting as queued then too."""
    expires = (options or {}).get("expires")
    if isinstance(expires, int | float) and not isinstance(expires, bool) and expires > 0:
        return float(expires)
    return None


def _reason(mode: str, queued: int, running_now: int) -> str:
    state = f"{running_now} running, {queued} queued"
    if mode == "skip":
        return f"overlap: its previous run is not done ({state}; overlap='skip')"
    return f"overlap: buffered until its previous run is done ({state}; overlap='buffer_one')"


def _warn_once(warned: set[str], key: str, message: str) -> None:
    if key not in warned:
        warned.add(key)
        logger.warning(message)
