"""What runs: the queued and running runs of entries with an overlap policy, as the beat and
the workers record them in the store, each with a lease.

The beat reserves a run before it publishes it (:meth:`RunTracker.reserve_runs`, one round
trip in a tick where such an entry is due): the store counts the entry's queued and running
runs and, when its overlap policy lets the run go, records it as queued, atomically. The
message carries the entry's name in the ``redbeat_entry`` header. A worker that has RedBeat
installed (and ``redbeat_track_runs`` left on) records, from Celery's task signals, when such a
run starts (queued -> running, with a lease of ``redbeat_run_lease``) and ends, renews the
leases of its running ones every third of a lease and, from the first such run it sees, says
that it records runs (a tracker heartbeat). Until a worker has, the beat publishes those
entries unreserved, with the header, as with ``allow``: a worker that never runs such a task
never connects to the schedule's storage. So:

- a worker that dies stops renewing: its runs stop counting after one lease;
- a run whose message is lost stops counting as queued after ``redbeat_queued_timeout``;
- a beat that finds no live tracker (no worker records runs) publishes as if the policy were
  ``allow`` and logs why once: an entry is never blocked by a missing worker setup.

Messages without the header (every entry without an overlap policy) cost a worker one
attribute lookup per task.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from redbeat_core.settings import Setting

__all__ = [
    "ENTRY_HEADER",
    "Reservation",
    "Reserved",
    "RunTracker",
    "connect_worker_signals",
    "stop_recording",
]

logger = logging.getLogger("celery.worker")

#: The message header naming the entry a run belongs to (``task.request.redbeat_entry``).
ENTRY_HEADER: Final = "redbeat_entry"
TRACK_SETTING: Final = "redbeat_track_runs"
LEASE_SETTING: Final = "redbeat_run_lease"
QUEUED_SETTING: Final = "redbeat_queued_timeout"
DEFAULT_RUN_LEASE: Final = 60.0
DEFAULT_QUEUED_TIMEOUT: Final = 3600.0


@attrs.frozen
class Reservation:
    """A run the beat is about to publish, for an entry whose overlap policy is ``mode``
    (``"skip"`` or ``"buffer_one"``), under ``task_id``; counted as queued for at most
    ``queued_for`` seconds."""

    name: str
    task_id: str
    mode: str
    queued_for: float


@attrs.frozen
class Reserved:
    """What the store found for a :class:`Reservation`: whether the run may go (it is then
    recorded as queued) and the entry's queued and running runs before it."""

    allowed: bool
    queued: int
    running: int


@runtime_checkable
class RunTracker(Protocol):
    """The store capability behind the overlap policies. A store without it runs every entry
    as with ``overlap="allow"`` (the beat logs that once)."""

    def reserve_runs(self, runs: Sequence[Reservation]) -> list[Reserved] | None:
        """For each run in order (a later run of the same entry sees the earlier ones
        reserved), atomically: drop the entry's expired marks, count its queued and running
        runs, and record the run as queued when there are none (whatever the mode: the beat
        decides what a run that may not go does). None when no tracker heartbeat is alive
        (nothing is recorded then)."""
        ...

    def run_started(self, name: str, task_id: str, lease: float) -> None:
        """A worker started the run: queued -> running, for ``lease`` seconds."""
        ...

    def run_finished(self, name: str, task_id: str) -> None:
        """The run ended (or was revoked): neither queued nor running any more."""
        ...

    def renew_runs(self, runs: Sequence[tuple[str, str]], lease: float) -> None:
        """``(name, task_id)`` are still running: ``lease`` more seconds each."""
        ...

    def tracker_alive(self, tracker: str, lease: float) -> None:
        """The worker ``tracker`` records runs, for the next ``lease`` seconds."""
        ...

    def live_trackers(self) -> list[str]:
        """The workers whose heartbeat says they record runs now (``redbeat doctor``)."""
        ...


def settings() -> tuple[Setting, ...]:
    """The worker side's settings (declared by the ``redbeat.overlap`` plugin)."""
    from redbeat_core.settings import Setting, boolean, seconds

    return (
        Setting(
            TRACK_SETTING,
            "bool",
            True,
            "Workers with RedBeat installed record when the runs of entries with an overlap "
            "policy start and end (only messages carrying the redbeat_entry header; others "
            "cost one attribute lookup). False turns it off: the beat then publishes those "
            "entries as with overlap 'allow'.",
            parse=boolean,
        ),
        Setting(
            LEASE_SETTING,
            "float (s)",
            DEFAULT_RUN_LEASE,
            "How long a running run counts without its worker renewing it (every third of "
            "this): a worker that dies blocks its entries for at most this long.",
            parse=seconds(),
        ),
        Setting(
            QUEUED_SETTING,
            "float (s)",
            DEFAULT_QUEUED_TIMEOUT,
            "How long a published run counts as queued until a worker starts it (or the "
            "entry's expires option, when shorter): a lost message blocks its entry for at "
            "most this long.",
            parse=seconds(),
        ),
    )


# ------------------------------------------------------------------------------ worker side


class _Tracking:
    """One process's running runs and the thread renewing them and the tracker heartbeat."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Held by the renewal thread for each pass: once :func:`stop_recording` has it, no
        #: pass that began before is still writing.
        self.pass_lock = threading.Lock()
        #: task id -> (store, entry name, lease)
        self.running: dict[str, tuple[Any, str, float]] = {}
        self.heartbeats: dict[int, tuple[Any, float]] = {}  # id(store) -> (store, lease)
        self.pid = 0
        self.wake = threading.Event()
        self.warned = False
        #: Whether this process's receivers are connected to Celery's signals.
        self.connected = False

    def ensure_thread(self) -> None:
        """The renewal thread of this process (a forked pool child starts its own)."""
        if self.pid == os.getpid():
            return
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            # In a forked pool child, the parent's runs and heartbeats are not this process's.
            self.running.clear()
            self.heartbeats.clear()
            thread = threading.Thread(target=self._renew, name="redbeat-run-tracker", daemon=True)
            thread.start()

    def _renew(self) -> None:
        while True:
            with self.pass_lock:
                period = self._renew_once()
            self.wake.wait(period / 3)
            self.wake.clear()

    def _renew_once(self) -> float:
        """One pass: the heartbeats, then the running runs' leases. Returns the shortest lease
        (the next pass comes a third of it later)."""
        with self.lock:
            running = list(self.running.items())
            beats = list(self.heartbeats.values())
        period = DEFAULT_RUN_LEASE
        for store, lease in beats:
            period = min(period, lease)
            self.call(store.tracker_alive, _identity(), lease)
        by_lease: dict[tuple[int, float], tuple[Any, list[tuple[str, str]]]] = {}
        for task_id, (store, name, lease) in running:
            period = min(period, lease)
            by_lease.setdefault((id(store), lease), (store, []))[1].append((name, task_id))
        for (_, lease), (store, runs) in by_lease.items():
            self.call(store.renew_runs, runs, lease)
        return period

    def call(self, method: Any, *args: Any) -> None:
        """A store call from a worker: a failure is logged (once until one succeeds) and
        never reaches the task."""
        try:
            method(*args)
        except Exception as exc:
            if not self.warned:
                self.warned = True
                logger.warning("redbeat: cannot record a run for the overlap policies: %s", exc)
            return
        self.warned = False


_tracking = _Tracking()
_connect_lock = threading.Lock()


def _identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _tracker_for(app: Any) -> tuple[RunTracker, float, float] | None:
    """The app's store as a tracker with its lease and queued timeout, or None when tracking
    is off or the store cannot track."""
    from redbeat_core.runtime import get_runtime

    runtime = get_runtime(app)
    config = runtime.config.settings
    if not config.get(TRACK_SETTING, True):
        return None
    store = runtime.store
    if not isinstance(store, RunTracker):
        return None
    return (
        store,
        float(config.get(LEASE_SETTING, DEFAULT_RUN_LEASE)),
        float(config.get(QUEUED_SETTING, DEFAULT_QUEUED_TIMEOUT)),
    )


def _entry_of(request: Any) -> str | None:
    """The entry a task's request belongs to (its ``redbeat_entry`` header), or None."""
    name = getattr(request, ENTRY_HEADER, None)  # a worker merges the message's headers
    for holder in ("headers", "request_dict"):  # Task.apply's context; a revoked Request
        if name is None:
            found = getattr(request, holder, None)
            name = found.get(ENTRY_HEADER) if isinstance(found, Mapping) else None
    return name if isinstance(name, str) and name else None


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    name = _entry_of(getattr(task, "request", None))
    if name is None or task_id is None:
        return
    found = _safely(_tracker_for, task.app)
    if found is None:
        return
    store, lease, _queued = found
    _tracking.ensure_thread()
    with _tracking.lock:
        _tracking.running[task_id] = (store, name, lease)
        first = id(store) not in _tracking.heartbeats
        _tracking.heartbeats[id(store)] = (store, lease)
    if first:  # from now on this process says it records runs, every third of a lease
        _tracking.call(store.tracker_alive, _identity(), lease)
    _tracking.call(store.run_started, name, task_id, lease)


def _on_postrun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    name = _entry_of(getattr(task, "request", None))
    if name is None or task_id is None:
        return
    with _tracking.lock:
        held = _tracking.running.pop(task_id, None)
    store = held[0] if held is not None else None
    if store is None:
        found = _safely(_tracker_for, task.app)
        store = found[0] if found is not None else None
    if store is not None:
        _tracking.call(store.run_finished, name, task_id)


def _on_revoked(request: Any = None, sender: Any = None, **_: Any) -> None:
    """A revoked run never starts: it stops counting as queued."""
    name = _entry_of(request)
    task_id = getattr(request, "id", None) or getattr(request, "task_id", None)
    app = getattr(sender, "app", None)
    if name is None or task_id is None or app is None:
        return
    found = _safely(_tracker_for, app)
    if found is not None:
        _tracking.call(found[0].run_finished, name, task_id)


def stop_recording(**_: Any) -> None:
    """Stop this process's heartbeat and lease renewals (connected to ``worker_shutdown`` and
    ``worker_process_shutdown``; its runs stop counting after their lease). A process that
    runs another tracked task records again."""
    with _tracking.lock:
        _tracking.heartbeats.clear()
        _tracking.running.clear()
    with _tracking.pass_lock:  # a pass that began before has finished writing
        pass


def _safely(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # a worker's task must never fail for RedBeat's bookkeeping
        logger.warning("redbeat: run tracking is off in this worker: %s", exc)
        return None


def connect_worker_signals() -> None:
    """Connect the worker side to Celery's signals, once per process. The ``redbeat``
    distribution does it when the ``celery`` command loads (its ``celery redbeat`` command's
    entry point), so ``celery -A proj worker`` records runs with no code of yours; a worker
    started another way (``app.Worker(...)`` from code) calls this itself."""
    with _connect_lock:
        if _tracking.connected:
            return
        from celery import signals

        signals.task_prerun.connect(_on_prerun, weak=False)
        signals.task_postrun.connect(_on_postrun, weak=False)
        signals.task_revoked.connect(_on_revoked, weak=False)
        signals.worker_shutdown.connect(stop_recording, weak=False)
        signals.worker_process_shutdown.connect(stop_recording, weak=False)
        _tracking.connected = True
