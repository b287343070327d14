"""Run now: an operator asks for one run of an entry, outside its schedule.

``Schedule.run_now(name)`` stores a request (a store capability, :class:`RunRequestStore`);
the leading beat's next claim returns it with the entry, the tick publishes the entry once,
through the same ``apply_async`` as every run, and its commit marks the request done. The
entry's own schedule is left as it is: its due time, last run and run count do not move,
so a run-now never shifts or swallows a regular run. The run is recorded in the history as
manual, with who asked.

What it means per delivery mode: at-most-once marks the request done in the commit before the
publish (a beat that dies in between loses the request, as it loses a regular run);
at-least-once marks it done after a successful publish, so a failed publish is tried again.

A manual run bypasses ``redbeat_decide_runs`` (an operator asked for it explicitly: a
blackout plugin does not stop it); it is published even when the entry is disabled or paused,
and not when the entry was deleted or cannot be read (recorded as unsent, with the reason).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from redbeat_core import records
from redbeat_core.exceptions import EntryDecodeError
from redbeat_core.typing import EntryUpdate, Fence, Quarantine, RunRequest

if TYPE_CHECKING:
    from redbeat_core.codec import Codec
    from redbeat_core.entry import RedBeatSchedulerEntry

__all__ = ["ManualRuns", "RunRequestStore", "take_requests"]


@runtime_checkable
class RunRequestStore(Protocol):
    """A store that takes run-now requests: the capability, on top of
    :class:`~redbeat_core.typing.ScheduleStore`.

    ``request_run`` stores a request the next claim returns (in ``ClaimResult.requests``,
    with the entry as stored); a second request for the same entry before the first is done
    replaces it (one run). The commit takes ``requests_done``, the names whose request is
    done, and removes them in the same atomic step.
    """

    def request_run(self, name: str, by: str | None, at: float) -> None:
        """Ask for one run of ``name`` at the next claim."""
        ...

    def commit(
        self,
        fence: Fence | None,
        updates: Sequence[EntryUpdate],
        quarantine: Sequence[Quarantine] = (),
        *,
        requests_done: Sequence[str] = (),
    ) -> bool:
        """``ScheduleStore.commit``, also removing the requests of ``requests_done``."""
        ...


@attrs.frozen
class ManualRuns:
    """The requests of one claim, sorted out.

    :ivar runs: ``(stored name, entry, requested at, by)`` to publish.
    :ivar dropped: ``(request, reason)`` for requests that cannot run (the entry is gone or
        cannot be read): done without a publish.
    """

    runs: tuple[tuple[str, RedBeatSchedulerEntry, float, str | None], ...] = ()
    dropped: tuple[tuple[RunRequest, str], ...] = ()


def take_requests(
    requests: Sequence[RunRequest],
    *,
    app: Any,
    codec: Codec,
    clock: Callable[[], datetime],
    entry_class: type[RedBeatSchedulerEntry],
) -> ManualRuns:
    """Decode each request's entry; the ones that can run, and why the others cannot."""
    runs = []
    dropped = []
    for request in requests:
        if request.stored is None or request.stored.definition is None:
            dropped.append((request, "the entry was deleted before it could run"))
            continue
        try:
            entry = records.decode_entry(
                request.stored, app=app, codec=codec, entry_class=entry_class, clock=clock
            )
        except EntryDecodeError as exc:
            dropped.append((request, f"the entry cannot be read: {exc.reason}"))
            continue
        except Exception as exc:  # building the entry: this entry's fault
            dropped.append((request, f"the entry cannot be built: {exc!r}"))
            continue
        runs.append((request.name, entry, request.requested_at, request.by))
    return ManualRuns(tuple(runs), tuple(dropped))
