"""The real-broker mode's set-up: two servers, latency proxies, and the broker's own count.

One ``valkey-server`` keeps the schedule, a second one is the Celery broker (``redis://``), as
in production. With a round trip above 0 ms each gets a latency proxy in front of it
(:mod:`benchmarks.latency_proxy`, its own process), and the measured processes connect through
the proxies; the runner itself talks to both servers directly.

When a message reached the broker is taken at the broker: it sends a keyspace notification for
every ``LPUSH`` on the queue (``notify-keyspace-events Kl``) as it executes it, and
:class:`BrokerWatch` stamps each one as it arrives, on a plain socket read in a thread (the
replies are parsed afterwards, so the watch costs next to nothing while the sides run). That is
the time a batched message was sent (the end of its batch), not when ``before_task_publish``
fired (when it was buffered). The messages themselves are then read from the queue in order,
matched one to one with the stamps, and counted: ``LLEN``, the notifications, and the distinct
task ids and entry indexes must all agree with what the measured process published, or the case
fails (:class:`BrokerCountError`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hiredis
import redis

from redbeat_redis.testing.servers import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[1]
#: Celery's default queue: the list every benchmark message is pushed to.
QUEUE = "celery"
PROXY_START_TIMEOUT = 15.0


class BrokerCountError(RuntimeError):
    """The messages on the broker are not the ones published: lost, doubled or unknown."""


class LatencyProxy:
    """``python -m benchmarks.latency_proxy`` in front of one server, stopped by its pid."""

    def __init__(self, target_port: int, rtt_ms: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.latency_proxy",
                *("--listen", "127.0.0.1:0", "--to", f"127.0.0.1:{target_port}"),
                *("--rtt-ms", f"{rtt_ms:g}"),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once it listens; "" if it died
        if not line.startswith("listening 127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"latency proxy (pid {self.pid}) did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM to our own child, by its pid
            try:
                self.proc.wait(PROXY_START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class BrokerEnv:
    """The two servers of one measurement and the URLs the measured processes use."""

    rtt_ms: float
    schedule: ServerProcess
    broker: ServerProcess
    schedule_url: str
    broker_url: str
    proxies: list[LatencyProxy] = field(default_factory=list)

    @property
    def schedule_direct(self) -> str:
        return self.schedule.url

    def ping_ms(self) -> dict[str, float]:
        """PING round trips (ms; the fastest and the median of 50) directly and through the
        proxies: the round trip the measured processes really get (a proxy hop costs a little
        beyond its setting)."""
        out: dict[str, float] = {}
        for label, url in (
            ("direct", self.schedule_direct),
            ("schedule", self.schedule_url),
            ("broker", self.broker_url),
        ):
            client = redis.Redis.from_url(url)
            try:
                client.ping()
                times = []
                for _ in range(50):
                    t0 = time.perf_counter()
                    client.ping()
                    times.append((time.perf_counter() - t0) * 1000)
            finally:
                client.close()
            out[label + "_min"] = min(times)
            out[label + "_median"] = statistics.median(times)
        return out


@contextlib.contextmanager
def broker_env(rtt_ms: float) -> Iterator[BrokerEnv]:
    """Fresh schedule and broker servers (the broker sends keyspace notifications for list
    commands), behind latency proxies when ``rtt_ms`` > 0; everything stopped by its pid."""
    schedule = start_server("valkey")
    broker = None
    env = None
    try:
        broker = start_server("valkey", extra_args=["--notify-keyspace-events", "Kl"])
        env = BrokerEnv(rtt_ms, schedule, broker, schedule.url, broker.url)
        if rtt_ms > 0:
            for server in (schedule, broker):
                env.proxies.append(LatencyProxy(server.port, rtt_ms))
            env.schedule_url = f"redis://127.0.0.1:{env.proxies[0].port}/0"
            env.broker_url = f"redis://127.0.0.1:{env.proxies[1].port}/0"
        yield env
    finally:
        for proxy in env.proxies if env else []:
            proxy.stop()
        if broker is not None:
            broker.stop()
        schedule.stop()


def _command(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class BrokerWatch:
    """Stamps (``time.time()``) every ``LPUSH`` on the broker's queue when the broker sends its
    keyspace notification, on a direct connection (never through a proxy). Use as a context
    manager around the measured process; :meth:`stamps` parses what arrived, in order."""

    def __init__(self, broker: ServerProcess, queue: str = QUEUE) -> None:
        self.port = broker.port
        self.channel = f"__keyspace@0__:{queue}"
        self.chunks: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sock: socket.socket | None = None

    def __enter__(self) -> BrokerWatch:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(_command("SUBSCRIBE", self.channel))
        reader = hiredis.Reader()
        reply: Any = False
        while reply is False:  # nothing is published yet: the confirmation comes alone
            data = sock.recv(4096)
            if not data:
                raise RuntimeError("the broker closed the watch's connection")
            reader.feed(data)
            reply = reader.gets()
        if not (isinstance(reply, list) and reply[0] == b"subscribe"):
            raise RuntimeError(f"unexpected reply to SUBSCRIBE: {reply!r}")
        sock.settimeout(0.05)
        self.sock = sock
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self.sock is not None
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.chunks.append((time.time(), data))

    def stamps(self) -> list[float]:
        """The time of each notified ``LPUSH``, in the order the broker executed them."""
        reader = hiredis.Reader()
        out: list[float] = []
        for at, data in list(self.chunks):
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                if isinstance(reply, list) and reply[0] == b"message" and reply[2] == b"lpush":
                    out.append(at)
        return out

    def wait_for(self, count: int, timeout: float = 10.0) -> list[float]:
        """The stamps, once at least ``count`` arrived (or the deadline passed)."""
        deadline = time.monotonic() + timeout
        while len(stamps := self.stamps()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return stamps

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.sock is not None:
            self.sock.close()


@dataclass(frozen=True)
class Message:
    """One message on the broker: when it arrived, its task id and the entry index (the task's
    first argument; -1 without one)."""

    at: float | None
    task_id: str
    index: int


def read_messages(broker: ServerProcess, queue: str = QUEUE) -> list[dict[str, Any]]:
    """The queue's messages, oldest first (kombu pushes on the left), decoded: task id, task
    name, first argument."""
    client = redis.Redis.from_url(broker.url)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    out = []
    for item in reversed(raw):
        message = json.loads(item)
        headers = message.get("headers") or {}
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0] if body else []
        out.append(
            {
                "id": str(headers.get("id")),
                "task": headers.get("task"),
                "index": int(args[0]) if args else -1,
            }
        )
    return out


def account(
    broker: ServerProcess,
    watch: BrokerWatch | None,
    label: str,
    *,
    expected: Iterable[int] | None = None,
    published: int | None = None,
    at_stop: Iterable[int] = (),
) -> tuple[list[Message], dict[str, Any]]:
    """Count what reached the broker and check it: ``LLEN``, the notified ``LPUSH``es (with a
    watch), distinct task ids, and the entry indexes (each expected index as many times as
    expected, nothing else), or, without ``expected``, the number the process says it
    ``published``. ``at_stop``: publishes a beat announced (``before_task_publish``) after it
    was told to stop; each may be missing (the stop interrupted it: counted as lost at the
    stop, not as a failure), never doubled. Raises :class:`BrokerCountError` naming what
    differs. Returns the messages (with their arrival stamps when watched) and the counts."""
    client = redis.Redis.from_url(broker.url)
    try:
        llen = int(client.llen(QUEUE))
    finally:
        client.close()
    messages = read_messages(broker)
    want = Counter(expected) if expected is not None else None
    maybe = Counter(at_stop)
    got = Counter(m["index"] for m in messages)
    lost_at_stop = 0
    if want is not None and maybe:
        # What arrived of the interrupted publishes counts as expected; the rest was lost.
        arrived = (got - want) & maybe
        lost_at_stop = sum((maybe - arrived).values())
        want = want + arrived
    total = sum(want.values()) if want is not None else published
    stamps = watch.wait_for(total if total is not None else llen) if watch else None
    ids = [m["id"] for m in messages]
    problems = []
    if len(messages) != llen:
        problems.append(f"LLEN {llen} but {len(messages)} messages read")
    if total is not None and llen != total:
        problems.append(f"LLEN {llen}, expected {total}")
    if stamps is not None and len(stamps) != llen:
        problems.append(f"{len(stamps)} LPUSH notifications for LLEN {llen}")
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} duplicate task ids")
    if want is not None and got != want:
        lost = sum((want - got).values())
        extra = sum((got - want).values())
        problems.append(f"entry indexes differ: {lost} missing, {extra} extra or doubled")
    counts = {
        "llen": llen,
        "expected": total,
        "notified": None if stamps is None else len(stamps),
        "distinct_ids": len(set(ids)),
        "distinct_indexes": len(got),
        "lost_at_stop": lost_at_stop,
        "ok": not problems,
    }
    if problems:
        raise BrokerCountError(f"{label}: " + "; ".join(problems) + f" ({counts})")
    ats: list[float | None] = list(stamps) if stamps is not None else [None] * len(messages)
    return [Message(at, m["id"], m["index"]) for at, m in zip(ats, messages, strict=True)], counts


def purge(broker: ServerProcess) -> None:
    """Empty the queue between two measurements on the same broker."""
    client = redis.Redis.from_url(broker.url)
    try:
        client.delete(QUEUE)
    finally:
        client.close()
