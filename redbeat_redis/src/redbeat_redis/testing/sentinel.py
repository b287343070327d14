"""A real Redis Sentinel topology for tests: one master, one replica, three sentinels.

Every node is a real ``valkey-server`` or ``redis-server`` process (sentinels are the same
binary with ``--sentinel`` and their own writable config file) listening on 127.0.0.1, started
and stopped by its own pid through :class:`~redbeat_redis.testing.servers.ServerProcess`.
Sentinels are configured for quick failover (``down-after-milliseconds 1000``,
``failover-timeout 3000``), so a killed master is replaced within a few seconds.

Everything waits by polling with a deadline, never by a fixed sleep, and asks the nodes and
sentinels through redis-py (:func:`~redbeat_redis.testing.servers.connect`: a fresh connection,
no retries of its own).

Typical use::

    topology = SentinelTopology.start("valkey")
    try:
        url = topology.url()                 # redis+sentinel://127.0.0.1:p1,.../mymaster?db=0
        old = topology.kill_master()         # SIGKILL, as a crash would
        new = topology.wait_for_failover(30) # a sentinel names a new master that takes writes
        topology.heal()                      # the killed node comes back as a replica
    finally:
        topology.stop()
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

import attrs
import redis

from redbeat_redis.testing.servers import (
    INSTALL_HINTS,
    KINDS,
    TRANSIENT_ERRORS,
    RespValue,
    ServerError,
    ServerNotFoundError,
    ServerProcess,
    ServerStartError,
    connect,
    find_server_binaries,
    free_port,
)

__all__ = ["DEFAULT_SERVICE", "Address", "SentinelTopology"]

#: The service (master) name the sentinels monitor unless told otherwise.
DEFAULT_SERVICE: Final = "mymaster"
#: A key no test uses: ``DEL`` on it is a write that leaves nothing behind.
_WRITE_PROBE_KEY: Final = "redbeat-testing:sentinel-write-probe"
#: Data nodes start a full sync at once: the default waits 5 s for more replicas to share it.
_NODE_ARGS: Final = ("--repl-diskless-sync-delay", "0")
_POLL_EVERY: Final = 0.05
_START_ATTEMPTS: Final = 3

Address = tuple[str, int]
T = TypeVar("T")


def _sentinel_command(client: redis.Redis, subcommand: str, *args: str) -> Any:
    """``SENTINEL <subcommand> ...``, its reply parsed by redis-py. Not through the
    ``sentinel_*`` methods: before redis-py 8 those pass options (``once``,
    ``return_responses``) that a plain client's reply parsers reject, or answer just True."""
    return client.execute_command(f"SENTINEL {subcommand}", *args)  # type: ignore[no-untyped-call]


def _poll(condition: Callable[[], T | None], timeout: float) -> T | None:
    """Call ``condition`` until it returns something other than None, or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(*TRANSIENT_ERRORS):
            result = condition()
            if result is not None:
                return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(_POLL_EVERY)  # polling interval; the deadline decides


def _start(make: Callable[[int], ServerProcess]) -> ServerProcess:
    """Start a process on a free port, on a new port when that one was taken meanwhile."""
    for attempt in range(_START_ATTEMPTS):
        process = make(free_port())
        try:
            return process.start()
        except ServerStartError as error:
            process.stop()
            if not error.port_in_use or attempt == _START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@attrs.define
class SentinelTopology:
    """One master + replicas + sentinels of one server kind, all real processes.

    Build it with :meth:`start`. ``nodes`` are the data nodes (the master first at start-up;
    after a failover the roles move, so ask :meth:`master_address`), ``sentinels`` the sentinel
    processes. ``killed`` holds data nodes taken down by :meth:`kill_master` until :meth:`heal`
    brings them back.
    """

    kind: str
    binary: str
    service: str = DEFAULT_SERVICE
    quorum: int = 2
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000
    start_timeout: float = 10.0
    nodes: list[ServerProcess] = attrs.field(factory=list)
    sentinels: list[ServerProcess] = attrs.field(factory=list)
    killed: list[ServerProcess] = attrs.field(factory=list)

    # ----------------------------------------------------------------- start and stop

    @classmethod
    def start(
        cls,
        kind: str,
        *,
        service: str = DEFAULT_SERVICE,
        replicas: int = 1,
        sentinels: int = 3,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        ready_timeout: float = 30.0,
    ) -> SentinelTopology:
        """Start the master, its replicas and the sentinels; return once every sentinel sees
        the master, all replicas in sync and all other sentinels (failover needs them to know
        each other). Any process already started is stopped again if this fails."""
        binaries = find_server_binaries()
        if kind not in binaries:
            hint = INSTALL_HINTS.get(kind, f"known kinds: {', '.join(KINDS)}")
            raise ServerNotFoundError(f"no {kind} server binary found; {hint}")
        topology = cls(
            kind=kind,
            binary=binaries[kind],
            service=service,
            quorum=quorum,
            down_after_ms=down_after_ms,
            failover_timeout_ms=failover_timeout_ms,
        )
        try:
            master = topology._start_node(())
            for _ in range(replicas):
                topology._start_node(("--replicaof", master.host, str(master.port)))
            for _ in range(sentinels):
                topology._start_sentinel((master.host, master.port))
            topology.wait_until_ready(ready_timeout)
        except BaseException:
            topology.stop()
            raise
        return topology

    def _start_node(self, extra_args: Iterable[str]) -> ServerProcess:
        args = (*_NODE_ARGS, *extra_args)
        node = _start(
            lambda port: ServerProcess(
                self.kind, self.binary, port, extra_args=args, start_timeout=self.start_timeout
            )
        )
        self.nodes.append(node)
        return node

    def sentinel_config(self, master: Address) -> str:
        """The config file of one sentinel (sentinel rewrites it, so each gets its own)."""
        name = self.service
        return (
            f"sentinel monitor {name} {master[0]} {master[1]} {self.quorum}\n"
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {name} 1\n"
        )

    def _start_sentinel(self, master: Address) -> ServerProcess:
        config = self.sentinel_config(master)
        sentinel = _start(
            lambda port: ServerProcess(
                self.kind,
                self.binary,
                port,
                config=config,
                extra_args=("--sentinel",),
                start_timeout=self.start_timeout,
            )
        )
        self.sentinels.append(sentinel)
        return sentinel

    def stop(self) -> None:
        """Stop every process this topology started, each by its own pid, and remove their
        folders. Safe to call twice and after a failed start."""
        for process in [*self.sentinels, *self.nodes]:
            with contextlib.suppress(Exception):
                process.stop()
        self.killed.clear()

    def __enter__(self) -> SentinelTopology:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- addresses and URLs

    @property
    def sentinel_addresses(self) -> list[Address]:
        """``(host, port)`` of every sentinel, as redis-py's ``Sentinel`` takes them."""
        return [(s.host, s.port) for s in self.sentinels]

    def url(
        self,
        scheme: str = "redis+sentinel",
        *,
        db: int | None = 0,
        userinfo: str | None = None,
        service: str | None = None,
    ) -> str:
        """A URL naming every sentinel: ``redis+sentinel://h1:p1,h2:p2,h3:p3/<service>?db=0``."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        auth = f"{userinfo}@" if userinfo else ""
        query = "" if db is None else f"?db={db}"
        return f"{scheme}://{auth}{hosts}/{service or self.service}{query}"

    def master_address(self, timeout: float = 10.0) -> Address:
        """The master's address as the first sentinel that answers reports it."""
        address = _poll(self._reported_master, timeout)
        if address is None:
            raise ServerError(
                f"no sentinel reported a master for {self.service!r} within {timeout:g} s"
                + self._logs()
            )
        return address

    def _reported_master(self) -> Address | None:
        for sentinel in self.sentinels:
            if not sentinel.is_running():
                continue
            address = self._ask_master(sentinel, timeout=5.0)
            if address is not None:
                return address
        return None

    def _ask_master(self, sentinel: ServerProcess, *, timeout: float) -> Address | None:
        """What ``sentinel`` reports as the master (None: no master known, or no answer)."""
        with contextlib.suppress(*TRANSIENT_ERRORS), sentinel.client(timeout=timeout) as client:
            reply = _sentinel_command(client, "GET-MASTER-ADDR-BY-NAME", self.service)
            if reply is not None:
                host, port = reply
                return str(host), int(port)
        return None

    def node_at(self, address: Address) -> ServerProcess:
        """The data node process listening on ``address``."""
        for node in self.nodes:
            if (node.host, node.port) == tuple(address):
                return node
        raise ServerError(f"no data node of this topology listens on {address[0]}:{address[1]}")

    def master(self) -> ServerProcess:
        """The data node the sentinels currently report as master."""
        return self.node_at(self.master_address())

    # ----------------------------------------------------------------- health

    def _sentinel_ready(self, sentinel: ServerProcess, master: Address) -> bool:
        with sentinel.client() as client:
            # redis-py parses both replies into dicts, ports and counts as int.
            state = _sentinel_command(client, "MASTER", self.service)
            replicas = _sentinel_command(client, "SLAVES", self.service)
        if (state.get("ip"), state.get("port")) != master:
            return False
        if state.get("flags") != "master":  # nothing else: not s_down, not disconnected, ...
            return False
        if state.get("num-other-sentinels", 0) < len(self.sentinels) - 1:
            return False
        # Not down in the sentinel's eyes. Its view of the replica's link comes from INFO,
        # refreshed only every 10 s; the node's own INFO (checked by _nodes_ready) is live.
        healthy = {replica["port"] for replica in replicas if replica.get("flags") == "slave"}
        wanted = {n.port for n in self.nodes if n.is_running() and n.port != master[1]}
        return wanted <= healthy

    def _nodes_ready(self, master: Address) -> bool:
        for node in self.nodes:
            if not node.is_running():
                return False
            with node.client() as client:
                info = client.info("replication")
            if node.port == master[1]:
                if info.get("role") != "master":
                    return False
                continue
            following = (info.get("master_host"), info.get("master_port"))
            if info.get("role") != "slave" or info.get("master_link_status") != "up":
                return False
            if following != master:
                return False
        return True

    def _ready(self) -> Address | None:
        master = self._reported_master()
        if master is None or not self._nodes_ready(master):
            return None
        if all(self._sentinel_ready(s, master) for s in self.sentinels):
            return master
        return None

    def wait_until_ready(self, timeout: float = 30.0) -> Address:
        """Wait until every sentinel agrees on a master that all replicas follow, knows each
        replica as healthy and knows every other sentinel; return the master's address."""
        master = _poll(self._ready, timeout)
        if master is None:
            raise ServerError(
                f"the {self.kind} sentinel topology was not ready within {timeout:g} s"
                + self._logs()
            )
        return master

    def is_healthy(self) -> bool:
        """Every process runs and the sentinels agree (no waiting)."""
        if self.killed or not all(p.is_running() for p in [*self.sentinels, *self.nodes]):
            return False
        try:
            return self._ready() is not None
        except TRANSIENT_ERRORS:
            return False

    def _logs(self) -> str:
        parts = []
        for process in [*self.nodes, *self.sentinels]:
            role = "sentinel" if process in self.sentinels else "node"
            parts.append(
                f"\n--- {role} {process.port} (pid {process.pid}):\n{process.log_tail(15)}"
            )
        return "".join(parts)

    # ----------------------------------------------------------------- failover

    def kill_master(self) -> Address:
        """SIGKILL the current master by its pid (a crash: no shutdown, no last replication)
        and return its address. The process keeps its folder for :meth:`heal`."""
        address = self.master_address()
        node = self.node_at(address)
        node.kill()
        self.killed.append(node)
        return address

    def _accepts_writes(self, address: Address) -> bool:
        # DEL is rejected with READONLY by a replica: a reply at all means "master now".
        with connect(address[0], address[1], timeout=1.0) as client:
            client.delete(_WRITE_PROBE_KEY)
        return True

    def _reports(self) -> list[Address | None]:
        """What every running sentinel reports as the master right now (None: no answer)."""
        reports: list[Address | None] = []
        for sentinel in self.sentinels:
            if not sentinel.is_running():
                continue
            reports.append(self._ask_master(sentinel, timeout=1.0))
        return reports

    def wait_for_failover(
        self, timeout: float = 30.0, *, old: Address | None = None, agreed: bool = True
    ) -> Address:
        """Poll the sentinels until they report a master other than ``old`` (by default the
        last node :meth:`kill_master` killed) and that master accepts writes; return it.

        With ``agreed`` (the default) every running sentinel must report that same master, so
        the failover is complete everywhere; otherwise the first sentinel that names one is
        enough (what a client asking that sentinel would see).
        """
        if old is None:
            if not self.killed:
                raise ServerError("wait_for_failover: no master was killed and no old one given")
            last = self.killed[-1]
            old = (last.host, last.port)

        def promoted() -> Address | None:
            reports = self._reports()
            candidates = {a for a in reports if a is not None and a != old}
            if agreed and (len(candidates) != 1 or None in reports or old in reports):
                return None
            for address in sorted(candidates):
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    if self._accepts_writes(address):
                        return address
            return None

        address = _poll(promoted, timeout)
        if address is None:
            raise ServerError(
                f"the sentinels did not report a new writable master within {timeout:g} s "
                f"(last reports: {self._reports()})" + self._logs()
            )
        return address

    def heal(self, timeout: float = 30.0) -> Address:
        """Bring every killed node back as a replica of the current master and wait until the
        topology is ready again (so a session-wide topology survives a failover test)."""
        if self.killed:
            last = self.killed[-1]
            master = self.wait_for_failover(timeout, old=(last.host, last.port))
        else:
            master = self.master_address(timeout)
        while self.killed:
            node = self.killed.pop()
            # A crashed master restarted as-is would briefly claim to be a master with the
            # data it had; start it as a replica of the new master right away.
            node.extra_args = (*_NODE_ARGS, "--replicaof", master[0], str(master[1]))
            node.restart()
        return self.wait_until_ready(timeout)

    # ----------------------------------------------------------------- data

    def flush(self) -> None:
        """Empty every database on the master (replicated to the replicas)."""
        with self.master().client() as client:
            client.flushall()

    def replicas_of_master(self) -> list[ServerProcess]:
        """The running data nodes other than the current master."""
        master = self.master_address()
        return [n for n in self.nodes if n.is_running() and (n.host, n.port) != master]

    def call_on_master(self, *args: str | bytes | int | float) -> RespValue:
        """Send one command to the current master (see :meth:`ServerProcess.call`)."""
        return self.master().call(*args)

    def sentinel_state(self) -> list[Mapping[str, Any]]:
        """``SENTINEL MASTER <service>`` from every running sentinel, as redis-py parses it
        (for diagnostics)."""
        states = []
        for sentinel in self.sentinels:
            if sentinel.is_running():
                with sentinel.client() as client:
                    states.append(_sentinel_command(client, "MASTER", self.service))
        return states
