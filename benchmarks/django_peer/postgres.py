"""A throwaway PostgreSQL cluster from Debian's binaries, on 127.0.0.1 only.

``initdb`` into a temporary folder, then ``postgres`` listening on 127.0.0.1 and a free port
(its unix socket in the same folder), stopped by its pid. PostgreSQL refuses to run as root:
as root, the cluster runs as the ``postgres`` user Debian's package creates. Each measurement
gets a fresh database made from a migrated template (``createdb -T``), so no run sees another's
rows.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from redbeat_redis.testing.servers import free_port

USER = "bench"


def find_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``postgres`` in it."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p for p in root.glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise SystemExit(
            "PostgreSQL is not installed: `apt-get install -y postgresql` (Debian), "
            "or pass --db sqlite"
        )
    return found[-1]


class PostgresCluster:
    def __init__(self) -> None:
        self.bin = find_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="redbeat-bench-pg-"))
        self.port = free_port()
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        self.proc: subprocess.Popen[bytes] | None = None
        self._made = 0

    def _run(self, *argv: str) -> None:
        subprocess.run(
            argv,
            check=True,
            capture_output=True,
            cwd=self.dir,
            **self._as,  # type: ignore[call-overload]
        )

    def start(self) -> PostgresCluster:
        data = self.dir / "data"
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            USER,
            "-E",
            "UTF8",
            "--no-sync",
        )
        log = (self.dir / "postgres.log").open("wb")
        self.proc = subprocess.Popen(  # type: ignore[call-overload]
            [
                str(self.bin / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.dir),
                "-c",
                "listen_addresses=127.0.0.1",
            ],
            cwd=self.dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **self._as,
        )
        deadline = time.monotonic() + 60
        while True:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "postgres did not start:\n" + (self.dir / "postgres.log").read_text()[-3000:]
                )
            time.sleep(0.1)

    def params(self, name: str) -> dict[str, Any]:
        return {
            "engine": "postgresql",
            "host": "127.0.0.1",
            "port": self.port,
            "name": name,
            "user": USER,
        }

    def _client(self, tool: str, *argv: str) -> None:
        base = [str(self.bin / tool), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER]
        subprocess.run([*base, *argv], check=True, capture_output=True)

    def create(self, name: str, template: str | None = None) -> dict[str, Any]:
        self._client("createdb", *(["-T", template] if template else []), name)
        return self.params(name)

    def fresh(self, template: str) -> dict[str, Any]:
        self._made += 1
        return self.create(f"bench_{self._made}", template)

    def drop(self, params: dict[str, Any]) -> None:
        self._client("dropdb", "--if-exists", params["name"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown, by our own pid
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
