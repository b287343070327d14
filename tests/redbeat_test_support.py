"""Helpers that several test modules share.

``tests/`` is on pytest's ``pythonpath`` (see pyproject.toml) but is no package, so modules
import this one by its name. Only Celery and the standard library here: the core-only test
session imports it without any backend installed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.signals import before_task_publish


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail at the deadline (never a sleep as sync)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s", pytrace=False)
        time.sleep(0.02)


def ago(seconds: float) -> datetime:
    """An aware UTC instant ``seconds`` before now."""
    return datetime.now(UTC) - timedelta(seconds=seconds)


@dataclass
class Published:
    """Every publish in the test: (task name, routing key), in order."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return [task for task, _ in self.calls]

    def by(self, routing_key: str) -> list[str]:
        return [task for task, key in self.calls if key == routing_key]


@contextmanager
def recording_publishes() -> Iterator[Published]:
    """Record every publish (Celery's ``before_task_publish``) while the block runs."""
    record = Published()

    def on_publish(headers: Any = None, routing_key: Any = None, **_: Any) -> None:
        record.calls.append((headers["task"], routing_key))

    before_task_publish.connect(on_publish, weak=False)
    try:
        yield record
    finally:
        before_task_publish.disconnect(on_publish)


# ------------------------------------------------------------------------------ exposure


@dataclass
class Exposure:
    """Everything RedBeat showed while a block ran, as text: every log record of every logger
    (DEBUG and up, with tracebacks), every warning, and what the test adds (exceptions with
    their causes and tracebacks, reprs, banners). Secrets must appear nowhere in it."""

    handler: logging.Handler
    caught: list[warnings.WarningMessage] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        """Show ``values`` as RedBeat's users would see them: an exception as a traceback
        (chained causes included), anything else as ``str`` and ``repr``."""
        for value in values:
            if isinstance(value, BaseException):
                self.added.append("".join(traceback.format_exception(value)))
                self.added.append(repr(value))
            else:
                self.added += [str(value), repr(value)]

    @property
    def text(self) -> str:
        assert isinstance(self.handler, _Collecting)
        logged = "\n".join(self.handler.lines)
        warned = "\n".join(str(w.message) for w in self.caught)
        return "\n".join([logged, warned, *self.added])

    def assert_hidden(self, *secrets: str) -> None:
        text = self.text
        assert text.strip(), "something was shown, or this proves nothing"
        for secret in secrets:
            assert secret not in text, f"{secret!r} shown:\n{_around(text, secret)}"


class _Collecting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 300) : at + 300]


@contextmanager
def exposure() -> Iterator[Exposure]:
    """Collect what is shown while the block runs (see :class:`Exposure`): a handler on the
    root logger at DEBUG, every logger let through, warnings recorded."""
    handler = _Collecting()
    root = logging.getLogger()
    levels = {name: logger.level for name, logger in _loggers().items()}
    root_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for logger in _loggers().values():
        logger.setLevel(logging.NOTSET)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            shown = Exposure(handler)
            yield shown
            shown.caught = list(caught)
    finally:
        root.removeHandler(handler)
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_a_beat(app: Any, shown: Exposure) -> None:
    """Start a beat on ``app``, let it publish a due entry as leader, show its banner line and
    the reprs of everything it built (:class:`Exposure`), and close it."""
    from celery.schedules import schedule

    from redbeat_core import RedBeatScheduler, RedBeatSchedulerEntry
    from redbeat_core.runtime import get_runtime

    entry = RedBeatSchedulerEntry("due", "tasks.due", schedule(60), app=app)
    entry.last_run_at = ago(120)
    entry.save()
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        scheduler.tick()
        assert scheduler.lock is not None
        assert scheduler.lock.held, "the credentials really authenticated"
        runtime = get_runtime(app)
        shown.add(scheduler.info, runtime, runtime.config, runtime.backend, runtime.store)
        shown.add(scheduler.lock, runtime.config.settings)
        key = runtime.config.key_for("due")
        assert RedBeatSchedulerEntry.from_key(key, app=app).total_run_count == 1
    finally:
        scheduler.close()


def _loggers() -> dict[str, logging.Logger]:
    return {
        name: logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }


# ------------------------------------------------------------------------------ celery beat


def run_celery_beat(
    workdir: Path, app_source: str, *, until: str, timeout: float = 45.0, env: Any = None
) -> str:
    """Run a real ``celery beat`` (this Python, ``-m celery``) on ``app_source`` (written as
    ``beat_app.py`` into ``workdir``) with RedBeat as scheduler, until its output shows
    ``until``; stop it by its pid (SIGTERM, then SIGKILL after a deadline) and return all it
    printed: the banner, every log line at DEBUG, any traceback."""
    (workdir / "beat_app.py").write_text(app_source)
    log = workdir / "beat.log"
    environment = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(workdir), os.environ.get("PYTHONPATH")])
    )
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "beat_app", "beat", "-S",
             "redbeat.RedBeatScheduler", "--loglevel=DEBUG",
             f"--schedule={workdir / 'celerybeat-schedule'}"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=workdir, env=environment,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while until not in log.read_text(errors="replace"):
            if popen.poll() is not None:
                break  # it exited: the caller's assertions say what went wrong
            if time.monotonic() > deadline:
                pytest.fail(f"celery beat never printed {until!r}:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
    finally:
        stop_process(popen, timeout=15)
    return log.read_text(errors="replace")


# ------------------------------------------------------------------------------ the docs site


@dataclass(frozen=True)
class SiteBuild:
    """One ``mkdocs build --strict`` of a site (see the ``built_site`` fixture in
    ``tests/docs/conftest.py``)."""

    site: Path
    returncode: int
    output: str


def build_site(config_file: Path, site: Path) -> SiteBuild:
    """``mkdocs build --strict`` of ``config_file`` into ``site``, as ``nox -s docs`` runs it."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "mkdocs", "build", "--strict"),
            *("--config-file", str(config_file), "--site-dir", str(site)),
        ],
        cwd=config_file.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    return SiteBuild(site, result.returncode, result.stdout + result.stderr)


def on_a_terminal(
    argv: list[str], cwd: Path, env: dict[str, str], columns: int, timeout: float = 60.0
) -> list[str]:
    """Run ``argv`` with a pseudo-terminal ``columns`` wide as stdout and stderr (as an
    operator runs a command); its output lines, escape sequences included."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        argv, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=cwd, env=env
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return output.decode().replace("\r\n", "\n").splitlines()


#: The app the schedule command tests run the ``redbeat`` executable on (``-A proj``): its
#: storage is the test server's, given in ``REDBEAT_TEST_URL``.
COMMANDS_PROJ = """\
from celery import Celery
import os

app = Celery("proj", broker="memory://")
app.conf.redbeat_url = os.environ["REDBEAT_TEST_URL"]
app.conf.timezone = "Europe/Paris"
"""


def run(
    workdir: Path, url: str, *argv: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an executable of this environment (``redbeat``, ``celery``, ``python``) in
    ``workdir``, which is on its ``PYTHONPATH``, with ``REDBEAT_TEST_URL=url``."""
    env = dict(os.environ, REDBEAT_TEST_URL=url)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")]))
    env.pop("REDBEAT_APP", None)
    env.pop("REDBEAT_URL", None)
    return subprocess.run(
        [str(Path(sys.executable).parent / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        input=stdin,
        timeout=60,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must have exited 0."""
    assert done.returncode == 0, done.stderr
    return done.stdout


# ------------------------------------------------------------------------------ redbeat web


def free_port() -> int:
    """A port free on 127.0.0.1 now (the OS picks it)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class WebProcess:
    """A ``redbeat web`` process this test started (see :func:`running_web`)."""

    popen: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_web(
    workdir: Path,
    argv: list[str],
    env: dict[str, str],
    *,
    root_path: str = "",
    extra: tuple[str, ...] = (),
) -> Iterator[WebProcess]:
    """Start ``<argv> web --port <free>`` (``argv[0]`` an executable of this environment:
    ``redbeat`` or ``celery``) and wait until it answers; stop it by its pid (SIGTERM, then
    SIGKILL) at the end."""
    import urllib.error
    import urllib.request

    port = free_port()
    log = workdir / f"web-{port}.log"
    command = [str(Path(sys.executable).parent / argv[0]), *argv[1:], "web", "--port", str(port)]
    if root_path:
        command += ["--root-path", root_path]
    command += extra
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=workdir, env={**env, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    web = WebProcess(popen, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if popen.poll() is not None:
                pytest.fail(f"redbeat web exited ({popen.returncode}):\n{web.output()}")
            try:
                with urllib.request.urlopen(f"{web.base}/static/dashboard.css", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"redbeat web did not answer within 30 s:\n{web.output()}")
                time.sleep(0.05)
        yield web
    finally:
        stop_process(popen)


def check_dashboard_on(app: Any) -> None:
    """The dashboard over ``app``'s storage, whatever the backend: it lists, sorts by next run,
    shows an entry's next runs, pauses with a reason, and its cluster panel answers. Needs the
    ``web`` extra."""
    from celery.schedules import crontab
    from starlette.testclient import TestClient

    from redbeat import Schedule
    from redbeat.web import create_app

    api = Schedule(app)
    api.add("nightly", "proj.nightly", crontab(minute=0, hour=3))
    api.add("often", "proj.often", 30)
    with TestClient(create_app(app)) as web:
        page = web.get("/api/entries").json()
        assert [e["name"] for e in page["entries"]] == ["nightly", "often"]
        by_next = web.get("/api/entries", params={"sort": "next"}).json()
        assert by_next["entries"][0]["name"] == "often"
        assert len(web.get("/api/entries/nightly").json()["next_runs"]) == 10
        token = web.get("/api/csrf").json()["token"]
        paused = web.post(
            "/api/entries/often/pause", json={"reason": "db move"}, headers={"X-CSRF-Token": token}
        )
        assert paused.status_code == 200, paused.text
        assert api.get("often").reason == "db move"
        assert "often" in web.get("/", params={"state": "paused"}).text
        assert web.get("/cluster").status_code == 200


def stop_process(popen: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a process the test started, by its own pid: SIGTERM, wait ``timeout`` seconds,
    then SIGKILL."""
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


CHROMIUM_ENV = "REDBEAT_TEST_CHROMIUM"
CHROMIUM_INSTALL = "apt-get install -y chromium"


def chromium() -> str:
    """Debian's chromium for Playwright (``executable_path``; it never downloads one): skipped
    when missing, a failure in CI."""
    found = (
        os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if found:
        return found
    message = f"no chromium found: {CHROMIUM_INSTALL} (or set {CHROMIUM_ENV})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}. A missing browser fails in CI.", pytrace=False)
    pytest.skip(message)
