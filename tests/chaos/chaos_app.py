"""The Celery app of the chaos tests' real ``celery beat`` processes, and their test plugin.

The tests start ``python -m celery -A chaos_app beat -S redbeat.RedBeatScheduler`` with this
folder on ``PYTHONPATH`` and the parameters as JSON in the environment variable
``REDBEAT_CHAOS`` (see :func:`beat_params`): the store's URL, the broker's URL, the delivery
mode, the lease, and a working folder shared with the test.

:class:`ChaosPlugin` (loaded through ``redbeat_plugins``) does two things in the beat:

* **Stamps every publish.** Each entry's only argument is its own name. The plugin notes each
  due run's due time (``redbeat_decide_runs``) and run number (the entry handed to
  ``redbeat_before_dispatch`` already counts its run), and Celery's ``before_task_publish``
  signal adds them to the message's headers as ``chaos``: entry, due time, run number, this
  beat's pid and fencing epoch, and when it was published. The message goes to the real broker,
  so what the test later reads from the broker's queue is exactly what was published.
* **Pauses where the test asks.** When the file ``arm-<point>`` exists in the working folder,
  the leader that reaches that point first takes it (an atomic rename, so one beat only),
  writes ``at-<point>`` (JSON: its pid and the runs in flight) and then waits until the file
  ``go-<point>`` exists. The test freezes it there (SIGSTOP), lets another beat take over, and
  resumes it (SIGCONT) when it chooses: the pause points are exact, and no sleep synchronises.
  Points: ``idle`` (a leader's tick just ended, outside any tick's work), ``before_dispatch``
  (the runs are planned; under at-most-once they are committed, under at-least-once not yet)
  and ``after_dispatch`` (published; under at-least-once not yet committed).

It also writes ``ready/<pid>`` once its scheduler started (start-up is over: the beat has
synced with the store), and ``tokens/<lock token>`` (content: its pid) when it takes the lock,
so the test finds the leader's pid from the lock key's value.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import before_task_publish

from redbeat_core import hookimpl

#: Where the test passes the parameters (JSON).
PARAMS_ENV = "REDBEAT_CHAOS"
#: The one task every chaos entry runs; no worker consumes it (the test reads the queue).
TASK = "chaos.run"
#: The pause points (see the module's docstring).
PAUSE_POINTS = ("idle", "before_dispatch", "after_dispatch")
#: How often a paused hook looks for its ``go`` file (a poll; the test decides when).
_POLL = 0.01


def beat_params() -> dict[str, Any]:
    """The parameters the test gave this beat process."""
    params: dict[str, Any] = json.loads(os.environ[PARAMS_ENV])
    return params


PARAMS = beat_params()
WORKDIR = Path(PARAMS["workdir"])

app = Celery("chaos")
app.conf.update(
    broker_url=PARAMS["broker"],
    redbeat_redis_url=PARAMS["store"],
    redbeat_delivery=PARAMS["delivery"],
    redbeat_lock_timeout=PARAMS["lock_timeout"],
    redbeat_plugins=["chaos_app:PLUGIN"],
    beat_max_loop_interval=1,
    broker_connection_retry_on_startup=True,
    result_expires=None,  # no celery.backend_cleanup entry: only the test's entries run
)


@app.task(name=TASK)  # type: ignore[untyped-decorator]
def run(name: str) -> None:
    """Never executed: the test counts the messages in the broker's queue."""


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class ChaosPlugin:
    """Stamps publishes with their run and pauses the leader where the test asks."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        #: Due times of the runs of the current tick, by entry name.
        self._due: dict[str, float] = {}
        #: (due time, run number) of the runs being published, by entry name.
        self.current: dict[str, tuple[float, int]] = {}
        self.epoch = 0

    # ----------------------------------------------------------------- stamping

    @hookimpl
    def redbeat_decide_runs(self, runs: Sequence[Any]) -> None:
        self._due = {run.entry.name: run.due_at for run in runs}

    @hookimpl
    def redbeat_before_dispatch(self, scheduler: Any, entries: Sequence[Any]) -> None:
        self.current = {e.name: (self._due[e.name], int(e.total_run_count)) for e in entries}
        fence = scheduler.lock.fence if scheduler.lock is not None else None
        self.epoch = fence.epoch if fence is not None else 0
        self._pause("before_dispatch")

    @hookimpl
    def redbeat_after_dispatch(self) -> None:
        self._pause("after_dispatch")

    @hookimpl
    def redbeat_tick(self, leader: bool) -> None:
        if leader:
            self._pause("idle")

    @hookimpl
    def redbeat_scheduler_started(self) -> None:
        ready = self.workdir / "ready"
        ready.mkdir(exist_ok=True)
        (ready / str(os.getpid())).touch()

    @hookimpl
    def redbeat_lock_acquired(self, fence: Any) -> None:
        if fence is not None:
            tokens = self.workdir / "tokens"
            tokens.mkdir(exist_ok=True)
            _write_atomically(tokens / fence.token, str(os.getpid()))

    def stamp(self, name: str) -> dict[str, Any]:
        """The stamp for a publish of entry ``name`` in the current dispatch."""
        due, number = self.current[name]
        return {
            "entry": name,
            "due": due,
            "run": number,
            "pid": os.getpid(),
            "epoch": self.epoch,
            "at": time.time(),
        }

    # ----------------------------------------------------------------- pausing

    def _pause(self, point: str) -> None:
        armed = self.workdir / f"arm-{point}"
        if not armed.exists():
            return
        taken = self.workdir / f".taken-{point}-{os.getpid()}"
        try:
            armed.rename(taken)  # atomic: one beat takes a pause
        except FileNotFoundError:
            return
        runs = [{"entry": n, "due": d, "run": r} for n, (d, r) in sorted(self.current.items())]
        report = {"pid": os.getpid(), "runs": runs if point != "idle" else [], "at": time.time()}
        _write_atomically(self.workdir / f"at-{point}", json.dumps(report))
        go = self.workdir / f"go-{point}"
        while not go.exists():
            time.sleep(_POLL)


PLUGIN = ChaosPlugin(WORKDIR)


@before_task_publish.connect(weak=False)  # type: ignore[untyped-decorator]
def _stamp(body: Any = None, headers: Any = None, **_: Any) -> None:
    """Put the run's stamp into the message's headers (they are published as they are then)."""
    if headers is not None and body and body[0]:
        headers["chaos"] = PLUGIN.stamp(str(body[0][0]))
