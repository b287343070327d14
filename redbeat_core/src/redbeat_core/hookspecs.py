"""Hook specifications: every way a plugin can extend RedBeat.

Each docstring here is the hook's reference documentation. Hooks fall into four groups:
registration (called once when an app's plugin manager is built), strategies (first non-None
result wins; RedBeat's own defaults are ordinary ``trylast`` implementations that any plugin
overrides), decisions (a plugin may skip or postpone a due run) and lifecycle observers (called
as things happen, and about an outcome only once it is stored). A decision or observer
implementation that raises is logged once with its plugin's name and the beat carries on.

Decision and observer hooks run on the beat's hot path, so they are batched: a tick with a
thousand due entries makes one ``redbeat_decide_runs``, one ``redbeat_before_dispatch`` and one
``redbeat_after_dispatch`` call, not a thousand. A hook that no plugin implements costs one
check, and its arguments are not built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from celery import Celery

    from redbeat_core.codec import Codec
    from redbeat_core.config import RedBeatConfig
    from redbeat_core.doctor import Finding
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.registry import BackendRegistry
    from redbeat_core.runs import Dispatched, DueRuns, Skipped
    from redbeat_core.scheduler import RedBeatScheduler
    from redbeat_core.settings import SettingRegistry
    from redbeat_core.typing import Backend, Fence, Lock

PROJECT_NAME = "redbeat"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -------------------------------------------------------------------------------------------------
# Registration: called once per plugin manager, when it is built.
# -------------------------------------------------------------------------------------------------


@hookspec(historic=True)
def redbeat_register_backends(registry: BackendRegistry) -> None:
    """Register storage backends by URL scheme.

    Call ``registry.register("scheme", factory)`` for each scheme the plugin handles. The factory
    is called with ``(config, app)`` and returns a :class:`~redbeat_core.typing.Backend`. Two
    plugins registering one scheme is an error naming both.

    :param registry: the app's backend registry (one per Celery app, shared by its scheduler
        and entries).

    Historic: a plugin registered after the manager was built still gets this call.
    """


@hookspec(historic=True)
def redbeat_register_settings(registry: SettingRegistry) -> None:
    """Declare the settings a plugin reads, so RedBeat reads, checks and documents them.

    Call ``registry.add(Setting(...), ..., owner="my-distribution")`` with each
    :class:`~redbeat_core.settings.Setting`: its name (``redbeat_<plugin>_<what>``, lower
    case), type, default, a ``parse`` function that checks a value and returns the value to
    use (raising :class:`~redbeat_core.settings.InvalidValue` with what is accepted), and what
    it means. ``registry.check(function, owner=...)`` adds a check across settings, called with
    the finished :class:`~redbeat_core.config.RedBeatConfig`. The values are then read once per
    app, in lower or upper case, and a plugin reads its own from ``config.settings[name]``. A
    bad value stops start-up with the setting's name, what is accepted and the plugin's name;
    a ``redbeat_*`` key that nobody declared is warned about with the closest declared name.

    :param registry: the app's setting registry.

    Historic: a plugin registered after the manager was built still gets this call.
    """


@hookspec(historic=True)
def redbeat_configure_converter(codec: Codec) -> None:
    """Teach the codec new ``__type__`` tags, for schedule classes or argument types.

    Use ``codec.register_type(tag, cls, unstructure, structure)``. The codec is private to one
    Celery app (its scheduler and entries): nothing leaks into other apps in the same process.

    :param codec: the app's codec.

    Historic: a plugin registered after the manager was built still gets this call.
    """


# -------------------------------------------------------------------------------------------------
# Strategies: the first non-None result wins; RedBeat's defaults are trylast implementations.
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def redbeat_make_lock(config: RedBeatConfig, backend: Backend) -> Lock | None:
    """Build the lock that decides which beat dispatches.

    Return a :class:`~redbeat_core.typing.Lock`, or None to leave the choice to the next plugin.
    The default asks the backend for its own lock, or runs without a lock when
    ``redbeat_lock_key`` is None.

    :param config: the scheduler's settings.
    :param backend: the storage backend the lock must exclude on.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------------------------------
# Decisions: a plugin may skip or postpone a due run, with a reason.
# -------------------------------------------------------------------------------------------------


@hookspec
def redbeat_decide_runs(scheduler: RedBeatScheduler, runs: DueRuns) -> None:
    """Entries are due: decide which runs must not be published now. One call per tick, with
    every run due in it, before anything of the tick is stored or published.

    Call ``runs.skip(run, reason)`` for a run whose due time must pass without it (the entry
    moves on to its next due time, its run count stays), or ``runs.postpone(run, until,
    reason)`` for one that must wait until ``until`` (Unix seconds or an aware datetime, after
    ``runs.now``). The first decision about a run stands: ``tryfirst`` orders a plugin before
    the others, and ``runs.decision(run)`` shows what an earlier plugin decided. A skipped or
    postponed run is not published, is logged once at INFO with the plugin's name and the
    reason, and is reported to ``redbeat_runs_skipped`` once the tick has stored it. Runs
    nobody decided about are published as usual.

    A plugin that raises here is logged once and ignored: its runs are published (failing
    open, as a beat that stopped scheduling would be worse than one that did not skip).

    :param scheduler: the :class:`~redbeat_core.scheduler.RedBeatScheduler`.
    :param runs: the tick's :class:`~redbeat_core.runs.DueRuns`, in due order: each a
        :class:`~redbeat_core.runs.DueRun` with its entry and due time (Unix seconds).
    """


# -------------------------------------------------------------------------------------------------
# Lifecycle observers: called as things happen. Return values are ignored.
# -------------------------------------------------------------------------------------------------


@hookspec
def redbeat_scheduler_started(scheduler: RedBeatScheduler) -> None:
    """The scheduler finished start-up: statics are synced, the backend is connected.

    :param scheduler: the :class:`~redbeat_core.scheduler.RedBeatScheduler`.
    """


@hookspec
def redbeat_scheduler_stopped(scheduler: RedBeatScheduler) -> None:
    """The scheduler is closing (beat shuts down). The lock is released after this call.

    :param scheduler: the :class:`~redbeat_core.scheduler.RedBeatScheduler`.
    """


@hookspec
def redbeat_tick(scheduler: RedBeatScheduler, leader: bool, due: int, next_wake: float) -> None:
    """One tick finished.

    :param scheduler: the scheduler.
    :param leader: whether this beat holds the lock (a standby's tick only polls for it).
    :param due: how many entries the tick claimed (0 for an idle tick or a standby).
    :param next_wake: seconds until the next tick (the sleep celery beat takes).
    """


@hookspec
def redbeat_before_dispatch(
    scheduler: RedBeatScheduler, entries: Sequence[RedBeatSchedulerEntry]
) -> None:
    """Due entries are about to be published, in due order. One call per tick, after the
    decisions: skipped and postponed runs are not among them. With at-most-once delivery their
    runs are already stored; with at-least-once they are stored after the publishes.

    :param scheduler: the scheduler.
    :param entries: the :class:`~redbeat_core.entry.RedBeatSchedulerEntry` objects.
    """


@hookspec
def redbeat_after_dispatch(scheduler: RedBeatScheduler, dispatched: Sequence[Dispatched]) -> None:
    """Entries were published. One call per tick, after the last publish of that tick.

    :param scheduler: the scheduler.
    :param dispatched: :class:`~redbeat_core.runs.Dispatched` records, each with the entry,
        its due time and publish time (Unix seconds) and the ``AsyncResult`` (or None).
    """


@hookspec
def redbeat_dispatch_failed(
    scheduler: RedBeatScheduler, entry: RedBeatSchedulerEntry, exc: BaseException
) -> None:
    """Publishing one entry raised. The beat logs it and goes on with the other entries.

    :param scheduler: the scheduler.
    :param entry: the entry that failed.
    :param exc: the exception raised by ``apply_async``.
    """


@hookspec
def redbeat_runs_skipped(scheduler: RedBeatScheduler, skipped: Sequence[Skipped]) -> None:
    """Due runs were skipped or postponed by a plugin (``redbeat_decide_runs``) and the tick
    stored that. One call per tick that skipped any.

    :param scheduler: the scheduler.
    :param skipped: :class:`~redbeat_core.runs.Skipped` records, each with the entry, its due
        time (Unix seconds) and the :class:`~redbeat_core.runs.Decision` (action, reason,
        plugin, and for a postponed run its new due time).
    """


@hookspec
def redbeat_entry_quarantined(scheduler: RedBeatScheduler, name: str, reason: str) -> None:
    """An entry could not be decoded or run and was moved out of the schedule. Called once the
    quarantine is stored (never for a tick whose commit failed).

    :param scheduler: the scheduler.
    :param name: the entry's name.
    :param reason: why, as recorded in the quarantine.
    """


@hookspec
def redbeat_entry_saved(app: Celery, entry: RedBeatSchedulerEntry) -> None:
    """An entry was saved through :meth:`RedBeatSchedulerEntry.save` in this process.

    :param app: the Celery app.
    :param entry: the saved entry.
    """


@hookspec
def redbeat_entry_deleted(app: Celery, name: str) -> None:
    """An entry was deleted through :meth:`RedBeatSchedulerEntry.delete` in this process.

    :param app: the Celery app.
    :param name: the deleted entry's name.
    """


@hookspec
def redbeat_lock_acquired(scheduler: RedBeatScheduler, fence: Fence | None) -> None:
    """This beat became the leader.

    :param scheduler: the scheduler.
    :param fence: the lock's fence (key, token, TTL, fencing epoch); None without a lock.
    """


@hookspec
def redbeat_lock_lost(scheduler: RedBeatScheduler, reason: str) -> None:
    """This beat stopped being the leader: the lock expired or was taken, or it was released.

    :param scheduler: the scheduler.
    :param reason: ``"expired"``, ``"released"`` or ``"unreachable"``.
    """


# -------------------------------------------------------------------------------------------------
# Operations: called by the operator's tools, never by a beat.
# -------------------------------------------------------------------------------------------------


@hookspec
def redbeat_doctor(app: Celery, backend: Backend) -> Sequence[Finding]:
    """Checks only this plugin or backend can make, for ``redbeat doctor``: return
    :class:`~redbeat_core.doctor.Finding` objects (a check's name, a verdict, what was found,
    the fix). A backend answers for its own ``backend`` only (check its type), a plugin for
    its own feature. Reading is fine; change nothing.

    A backend reports a storage it cannot reach as a ``"connection"`` problem: the other checks
    are then skipped. An implementation that raises is logged and left out.

    :param app: the Celery app.
    :param backend: the app's storage backend (not yet connected, maybe).
    """
    return ()
