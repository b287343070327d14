"""Hook specifications: every way a plugin can extend RedBeat.

Each docstring here is the hook's reference documentation. Hooks fall into three groups:
registration (called once when a scheduler's plugin manager is built), strategies (first
non-None result wins; RedBeat's own defaults are ordinary ``trylast`` implementations that any
plugin overrides), and lifecycle observers (called as things happen; a plugin that raises is
logged with its name and the beat carries on).

Observer hooks run on the beat's hot path, so they are batched: a tick with a thousand due
entries makes one ``redbeat_before_dispatch`` and one ``redbeat_after_dispatch`` call, not a
thousand. A hook that no plugin implements costs one empty-list check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from redbeat_core.codec import Codec
    from redbeat_core.config import RedBeatConfig
    from redbeat_core.registry import BackendRegistry
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
# Lifecycle observers: called as things happen. Return values are ignored.
# -------------------------------------------------------------------------------------------------


@hookspec
def redbeat_scheduler_started(scheduler: Any) -> None:
    """The scheduler finished start-up: statics are synced, the backend is connected.

    :param scheduler: the :class:`~redbeat_core.scheduler.RedBeatScheduler`.
    """


@hookspec
def redbeat_scheduler_stopped(scheduler: Any) -> None:
    """The scheduler is closing (beat shuts down). The lock is released after this call.

    :param scheduler: the :class:`~redbeat_core.scheduler.RedBeatScheduler`.
    """


@hookspec
def redbeat_tick(scheduler: Any, leader: bool, due: int, next_wake: float) -> None:
    """One tick finished.

    :param scheduler: the scheduler.
    :param leader: whether this beat holds the lock (a standby's tick only polls for it).
    :param due: how many entries the tick claimed (0 for an idle tick or a standby).
    :param next_wake: seconds until the next tick.
    """


@hookspec
def redbeat_before_dispatch(scheduler: Any, entries: Sequence[Any]) -> None:
    """Due entries are about to be published, in due order. One call per tick.

    :param scheduler: the scheduler.
    :param entries: the :class:`~redbeat_core.entry.RedBeatSchedulerEntry` objects.
    """


@hookspec
def redbeat_after_dispatch(scheduler: Any, dispatched: Sequence[Any]) -> None:
    """Entries were published. One call per tick, after the last publish of that tick.

    :param scheduler: the scheduler.
    :param dispatched: :class:`~redbeat_core.scheduler.Dispatched` records, each with the entry,
        its due time, the publish time and the ``AsyncResult`` (or None).
    """


@hookspec
def redbeat_dispatch_failed(scheduler: Any, entry: Any, exc: BaseException) -> None:
    """Publishing one entry raised. The beat logs it and goes on with the other entries.

    :param scheduler: the scheduler.
    :param entry: the entry that failed.
    :param exc: the exception raised by ``apply_async``.
    """


@hookspec
def redbeat_entry_quarantined(scheduler: Any, name: str, reason: str) -> None:
    """An entry could not be decoded or run and was moved out of the schedule.

    :param scheduler: the scheduler.
    :param name: the entry's name.
    :param reason: why, as recorded in the quarantine.
    """


@hookspec
def redbeat_entry_saved(app: Any, entry: Any) -> None:
    """An entry was saved through :meth:`RedBeatSchedulerEntry.save` in this process.

    :param app: the Celery app.
    :param entry: the saved entry.
    """


@hookspec
def redbeat_entry_deleted(app: Any, name: str) -> None:
    """An entry was deleted through :meth:`RedBeatSchedulerEntry.delete` in this process.

    :param app: the Celery app.
    :param name: the deleted entry's name.
    """


@hookspec
def redbeat_lock_acquired(scheduler: Any, fence: Fence | None) -> None:
    """This beat became the leader.

    :param scheduler: the scheduler.
    :param fence: the lock's fence (key, token, TTL, fencing epoch); None without a lock.
    """


@hookspec
def redbeat_lock_lost(scheduler: Any, reason: str) -> None:
    """This beat stopped being the leader: the lock expired or was taken, or it was released.

    :param scheduler: the scheduler.
    :param reason: ``"expired"``, ``"released"`` or ``"unreachable"``.
    """
