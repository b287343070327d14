"""Fixtures that drive the real celery-redbeat 2.4.2 from its own virtual environment.

celery-redbeat owns the import name ``redbeat``, as we do, so it can never be imported here.
The nox session ``compat`` installs it from PyPI into a venv of its own and passes that venv's
interpreter in ``REDBEAT_COMPAT_PYTHON``; tests run small scripts with it (subprocesses) against
the same real server as our code.

A script is run as: the source of ``compat_helpers.py`` (shared with our side), then
:data:`PRELUDE`, then the test's own code. It gets its parameters as ``PARAMS`` (JSON from
``argv[1]``) and reports with ``emit(obj)``: one JSON object per stdout line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import subprocess
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import pytest

COMPAT_ENV = "REDBEAT_COMPAT_PYTHON"
CELERY_REDBEAT_VERSION = "2.4.2"
HERE = Path(__file__).resolve().parent
HELPERS_PATH = HERE / "compat_helpers.py"
ROOT = HERE.parents[1]

#: Runs in the celery-redbeat interpreter after compat_helpers' source, before the test's code.
PRELUDE = '''
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from celery import Celery
from celery.schedules import crontab, schedule
from celery.signals import before_task_publish
from dateutil.rrule import FR, MO, WE

import redbeat
from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat.schedulers import acquire_distributed_beat_lock, ensure_conf, get_redis
from redbeat.schedules import rrule

PARAMS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
PUBLISHED = []


def _record_publish(sender=None, headers=None, **_):
    PUBLISHED.append(headers["task"] if headers else sender)


before_task_publish.connect(_record_publish, weak=False)


def make_app(**conf):
    """A Celery app wired like tests/conftest.py's make_app: memory:// broker, test server."""
    app = Celery("celery-redbeat-compat", set_as_current=False)
    app.conf.update(
        {
            "broker_url": "memory://",
            "redbeat_redis_url": PARAMS["url"],
            "beat_max_loop_interval": 5,
            **conf,
        }
    )
    return app


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\\n")
    sys.stdout.flush()


def ago(seconds):
    return datetime.now(UTC) - timedelta(seconds=seconds)


def wait_for_stop_line():
    """An Event set when the test writes a line to stdin (or closes it)."""
    stop = threading.Event()

    def read():
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=read, daemon=True).start()
    return stop
'''


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "celery_redbeat_limitation: documents a known, designed-in limit of celery-redbeat "
        "2.4.2 reading RedBeat's data (the test asserts the failure it shows)",
    )


class CompatScriptError(AssertionError):
    """A script in the celery-redbeat interpreter failed; carries its stderr."""


def _load_helpers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("redbeat_compat_helpers", HELPERS_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: compat_helpers loaded in our interpreter (tests/compat is not a package).
helpers = _load_helpers()


def _child_env() -> dict[str, str]:
    """Our environment without anything that would point the other interpreter at our code."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def build_script(body: str) -> str:
    return "\n".join([HELPERS_PATH.read_text(encoding="utf-8"), PRELUDE, textwrap.dedent(body)])


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_compat_script(
    python: str, body: str, params: dict[str, Any] | None = None, *, timeout: float = 60
) -> Any:
    """Run ``body`` in the celery-redbeat interpreter; return the last JSON line it emitted.

    Raises :class:`CompatScriptError` with its stderr when it exits non-zero, times out or emits
    nothing.
    """
    try:
        done = subprocess.run(
            [python, "-c", build_script(body), json.dumps(params or {})],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tempfile.gettempdir(),
            env=_child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run kills the child by its pid
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise CompatScriptError(
            f"celery-redbeat script timed out after {timeout}s; stderr:\n{_tail(stderr)}"
        ) from None
    if done.returncode != 0:
        raise CompatScriptError(
            f"celery-redbeat script exited {done.returncode}; stderr:\n{_tail(done.stderr)}"
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise CompatScriptError(f"celery-redbeat script emitted nothing; stderr:\n{done.stderr}")
    return json.loads(lines[-1])


class CompatProcess:
    """A long-running celery-redbeat script: its JSON events are read on a thread, its stderr
    goes to a temporary file (so a full pipe never blocks it), and it is stopped by its pid."""

    def __init__(self, python: str, body: str, params: dict[str, Any] | None = None) -> None:
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [python, "-c", build_script(body), json.dumps(params or {})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=tempfile.gettempdir(),
            env=_child_env(),
        )
        self.pid = self.proc.pid
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self._queue.put(json.loads(line))
        self._queue.put(None)  # end of output

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def _drain(self, timeout: float) -> dict[str, Any] | None:
        item = self._queue.get(timeout=timeout)
        if item is None:
            self.proc.wait(timeout=5)
            raise CompatScriptError(
                f"celery-redbeat process {self.pid} exited ({self.proc.returncode}) before the "
                f"awaited event; events: {self.events}; stderr:\n{_tail(self.stderr())}"
            )
        self.events.append(item)
        return item

    def wait_for(self, event: str, timeout: float = 20) -> dict[str, Any]:
        """The first event named ``event``; fails with its stderr on timeout or exit."""
        for item in self.events:
            if item.get("event") == event:
                return item
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self._drain(left)
            except queue.Empty:
                break
            if item is not None and item.get("event") == event:
                return item
        raise CompatScriptError(
            f"no {event!r} event from celery-redbeat process {self.pid} within {timeout}s; "
            f"events: {self.events}; stderr:\n{_tail(self.stderr())}"
        )

    def seen(self, event: str) -> bool:
        """Whether ``event`` has been emitted so far (never waits)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._drain(0)
        return any(item.get("event") == event for item in self.events)

    def send(self, line: str = "stop") -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        """SIGKILL, by pid: the process gets no chance to release anything."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop it by its pid whatever state it is in (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._stderr.close()


class Compat:
    """What a test uses to drive celery-redbeat: ``run`` a script, ``spawn`` a long one."""

    helpers = helpers

    def __init__(self, python: str) -> None:
        self.python = python
        self._spawned: list[CompatProcess] = []

    def run(self, body: str, *, timeout: float = 60, **params: Any) -> Any:
        return run_compat_script(self.python, body, params, timeout=timeout)

    def spawn(self, body: str, **params: Any) -> CompatProcess:
        process = CompatProcess(self.python, body, params)
        self._spawned.append(process)
        return process

    def stop_all(self) -> None:
        for process in self._spawned:
            process.stop()


@pytest.fixture(scope="session")
def compat_python() -> str:
    """The celery-redbeat venv's interpreter, checked to really hold celery-redbeat 2.4.2.

    Unset: skipped locally (run ``nox -s compat``), a failure when ``CI`` is set.
    """
    path = os.environ.get(COMPAT_ENV)
    if not path:
        message = (
            f"{COMPAT_ENV} is not set: run 'nox -s compat', which builds a venv with "
            f"celery-redbeat=={CELERY_REDBEAT_VERSION} and sets it"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}. Compat tests must run in CI.", pytrace=False)
        pytest.skip(message)
    if not Path(path).exists():
        pytest.fail(f"{COMPAT_ENV}={path!r} does not exist", pytrace=False)
    # nox passes a path relative to the checkout; scripts run elsewhere. No resolve(): a venv's
    # python is a symlink, and following it would leave the venv.
    path = os.path.abspath(path)
    probe = subprocess.run(
        [
            path,
            "-c",
            "import json, importlib.metadata as m, importlib.util as u, redbeat.schedulers; "
            "print(json.dumps({'version': m.version('celery-redbeat'), "
            "'file': redbeat.__file__, 'ours': u.find_spec('redbeat_core') is not None}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tempfile.gettempdir(),
        env=_child_env(),
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail(
            f"{COMPAT_ENV}={path!r} cannot import celery-redbeat:\n{probe.stderr}", pytrace=False
        )
    found = json.loads(probe.stdout)
    if found["version"] != CELERY_REDBEAT_VERSION:
        pytest.fail(
            f"{COMPAT_ENV} has celery-redbeat {found['version']}, "
            f"expected {CELERY_REDBEAT_VERSION}",
            pytrace=False,
        )
    if found["ours"] or Path(found["file"]).resolve().is_relative_to(ROOT / "src"):
        pytest.fail(
            f"{COMPAT_ENV} sees RedBeat's code (redbeat from {found['file']}); its venv must "
            "hold celery-redbeat alone",
            pytrace=False,
        )
    return path


@pytest.fixture
def compat(compat_python: str) -> Iterator[Compat]:
    """Drives celery-redbeat; every process it spawned is stopped by its pid afterwards."""
    driver = Compat(compat_python)
    try:
        yield driver
    finally:
        driver.stop_all()


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""

    def wait(check: Callable[[], Any], what: str, *, timeout: float = 10, every: float = 0.05):
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {timeout}s waiting until {what}")
            time.sleep(every)

    return wait
