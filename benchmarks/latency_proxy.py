"""A TCP proxy that adds a round trip's latency, for the real-broker benchmarks.

``python -m benchmarks.latency_proxy --listen 127.0.0.1:0 --to 127.0.0.1:6379 --rtt-ms 1``
accepts connections on ``--listen`` and joins each to a new connection to ``--to``; every chunk
read in either direction is forwarded half the round trip (``--rtt-ms`` / 2) after it was read.
Each direction keeps a queue of (time it is due to leave, bytes): the writer waits for the head's
time, never for a delay per chunk, so pipelined chunks all leave half a round trip after they
arrived (serial sleeps would stack one delay per chunk) and bytes keep their order. The one
line it prints to stdout, ``listening 127.0.0.1:PORT``, says where it listens (``:0`` picks a
free port); the runner starts it, reads that line and stops it by its pid (SIGTERM).

The event loop uses ``select()``, whose timeout has microsecond resolution: ``epoll`` (asyncio's
default on Linux) rounds every timeout up to a whole millisecond, which would turn a 0.5 ms half
round trip into 1 ms. Only 127.0.0.1 is accepted, on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import selectors
import signal
import sys
from collections import deque
from typing import Final

LOOPBACK: Final = "127.0.0.1"
CHUNK: Final = 256 * 1024


def address(text: str) -> tuple[str, int]:
    """``127.0.0.1:PORT`` as (host, port); anything else is refused, naming what is accepted."""
    host, _, port = text.rpartition(":")
    if host != LOOPBACK or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give 127.0.0.1:PORT (the proxy only listens on and connects to "
            "127.0.0.1, port 0 to 65535; 0 picks a free port for --listen)"
        )
    return host, int(port)


def round_trip(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(
            f"--rtt-ms {text!r}: give the added round trip in milliseconds, 0 to 10000"
        )
    return value


class Pipe:
    """One direction of one connection: reads chunks, forwards each ``delay`` s after it was
    read, in order."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.loop = asyncio.get_running_loop()
        #: (monotonic time the chunk leaves, the chunk; b"" for the end of the stream)
        self.queue: deque[tuple[float, bytes]] = deque()
        self.ready = asyncio.Event()

    async def read(self) -> None:
        try:
            while chunk := await self.reader.read(CHUNK):
                self.queue.append((self.loop.time() + self.delay, chunk))
                self.ready.set()
        except (ConnectionError, OSError):
            pass
        self.queue.append((self.loop.time() + self.delay, b""))
        self.ready.set()

    async def write(self) -> None:
        try:
            while True:
                while not self.queue:
                    self.ready.clear()
                    await self.ready.wait()
                leaves = self.queue[0][0]
                wait = leaves - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                now = self.loop.time()
                # Everything due by now goes out in one write (it arrived in order).
                out = []
                while self.queue and self.queue[0][0] <= now and self.queue[0][1]:
                    out.append(self.queue.popleft()[1])
                if out:
                    self.writer.write(b"".join(out))
                    await self.writer.drain()
                elif self.queue and not self.queue[0][1] and self.queue[0][0] <= now:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
        except (ConnectionError, OSError):
            return


async def serve(listen: tuple[str, int], target: tuple[str, int], rtt_ms: float) -> None:
    delay = rtt_ms / 2000.0
    joined: set[asyncio.Task[None]] = set()

    async def join(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            joined.add(task)
            task.add_done_callback(joined.discard)
        try:
            server_reader, server_writer = await asyncio.open_connection(*target)
        except OSError:
            client_writer.close()
            return
        pipes = (
            Pipe(client_reader, server_writer, delay),
            Pipe(server_reader, client_writer, delay),
        )
        tasks = [asyncio.ensure_future(p.read()) for p in pipes]
        tasks += [asyncio.ensure_future(p.write()) for p in pipes]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:  # the proxy stops: end quietly (asyncio 3.11's stream
            for t in tasks:  # callback would report a cancelled connection task as an error)
                t.cancel()
        except Exception:  # one connection's failure must not stop the proxy
            pass
        for writer in (client_writer, server_writer):
            writer.close()

    server = await asyncio.start_server(join, *listen, limit=CHUNK)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {LOOPBACK}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
        for task in list(joined):
            task.cancel()
        await asyncio.gather(*joined, return_exceptions=True)


def _precise_timers() -> None:
    """Ask Linux for 1 µs timer slack instead of 50 µs (``prctl(PR_SET_TIMERSLACK)``), so each
    wait ends when it should; elsewhere, or if refused, keep the default."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK, in nanoseconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency_proxy", description=__doc__)
    parser.add_argument("--listen", type=address, required=True, metavar="127.0.0.1:PORT")
    parser.add_argument("--to", type=address, required=True, metavar="127.0.0.1:PORT")
    parser.add_argument("--rtt-ms", type=round_trip, required=True, metavar="MS")
    args = parser.parse_args(argv)
    _precise_timers()
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(serve(args.listen, args.to, args.rtt_ms))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
