"""The database file: its URL, its connection, its schema, its transactions and its clock.

URL forms (SQLAlchemy's convention):

- ``sqlite:////var/lib/beat/schedule.db``: four slashes, an absolute path;
- ``sqlite:///schedule.db``: three slashes, a path relative to the working directory of the
  process that reads the settings, resolved once, when the backend is built;
- query parameter ``timeout`` (seconds, default 5): how long a write waits for another
  process's write to finish (SQLite's ``busy_timeout``), e.g. ``sqlite:////x.db?timeout=10``.

No host (``sqlite://host/x.db``), no in-memory database (``sqlite://``, ``:memory:``: a schedule
that no other process can see is no use to a beat), no other parameters.

One connection per :class:`Database`, shared by the threads of a process under a lock (a beat
is single-threaded; a web process may save entries from several threads). SQLite serialises
writers anyway, so per-thread connections would buy nothing but more file handles. A child
process (fork) never reuses its parent's connection: it opens its own.

The clock: every lease decision is taken by SQLite's ``julianday('now')`` inside the statement
that reads or writes the lease, so the lock never mixes clocks. That clock is the host's
clock; WAL mode needs shared memory, so every process using the file is on the same host and
reads the same clock. This is why the backend does not support network filesystems.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError

SCHEME: Final = "sqlite"
DEFAULT_TIMEOUT: Final = 5.0
#: ``PRAGMA user_version`` of the schema below; a newer file is refused rather than misread.
#: 2 added the run history (``entry_runs``, ``runs``), run-now (``run_requests``) and audit
#: (``audit``) tables;
#: a version-1 file gets them when it is opened.
SCHEMA_VERSION: Final = 2
#: Seconds between two tries of a statement that does not wait for the busy timeout by itself.
_BUSY_POLL: Final = 0.005
#: SQLite's clock as Unix seconds (millisecond precision). Evaluated once per statement.
NOW: Final = "((julianday('now') - 2440587.5) * 86400.0)"
ACCEPTED_URLS: Final = (
    "sqlite:////absolute/path/schedule.db (four slashes) or sqlite:///relative/schedule.db "
    "(three slashes, relative to the working directory), optionally ?timeout=<seconds>"
)

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS entries (
        name       TEXT PRIMARY KEY NOT NULL,
        definition TEXT NOT NULL,   -- celery-redbeat's definition JSON
        meta       TEXT,            -- last_run_at, total_run_count
        policy     TEXT,            -- RedBeat's per-entry settings
        score      REAL             -- next due time in Unix seconds, NULL: not scheduled
    )""",
    "CREATE INDEX IF NOT EXISTS entries_due ON entries (score, name) WHERE score IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS statics (name TEXT PRIMARY KEY NOT NULL)",
    "CREATE TABLE IF NOT EXISTS quarantine (name TEXT PRIMARY KEY NOT NULL, reason TEXT NOT NULL)",
    # Run history (redbeat_core.history): each entry's newest records, and the schedule's.
    # Rows are only ever appended and trimmed from the oldest, so ids stay in order.
    """CREATE TABLE IF NOT EXISTS entry_runs (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        name   TEXT NOT NULL,
        record TEXT NOT NULL            -- the run record's JSON
    )""",
    "CREATE INDEX IF NOT EXISTS entry_runs_by_name ON entry_runs (name, id)",
    """CREATE TABLE IF NOT EXISTS runs (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        record TEXT NOT NULL
    )""",
    # The audit log (redbeat_core.audit): changes to the schedule, newest kept.
    """CREATE TABLE IF NOT EXISTS audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        record TEXT NOT NULL            -- the change's JSON
    )""",
    # Run-now requests (redbeat_core.manual): one per entry, returned by the next claim.
    """CREATE TABLE IF NOT EXISTS run_requests (
        name         TEXT PRIMARY KEY NOT NULL,
        requested_at REAL NOT NULL,     -- Unix seconds
        by           TEXT               -- who asked
    )""",
    """CREATE TABLE IF NOT EXISTS lease (
        key        TEXT PRIMARY KEY NOT NULL,   -- the lock's name (redbeat_lock_key)
        token      TEXT,                        -- the holder, NULL when released
        expires_at REAL NOT NULL DEFAULT 0,     -- Unix seconds, SQLite's clock
        epoch      INTEGER NOT NULL DEFAULT 0   -- fencing number, +1 at every acquisition
    )""",
)


@attrs.frozen
class SqliteLocation:
    """Where the database file is and how long a write waits for another's."""

    path: Path
    timeout: float = DEFAULT_TIMEOUT


def parse_url(url: str, *, setting: str = "redbeat_url", cwd: Path | None = None) -> SqliteLocation:
    """The location a ``sqlite://`` URL names. Raises :class:`ConfigurationError` naming
    ``setting`` for any URL that is not one of the accepted forms."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise ConfigurationError(setting, url, ACCEPTED_URLS)
    if parts.netloc:
        raise ConfigurationError(
            setting,
            url,  # ConfigurationError masks a password in it; the host alone is quoted here
            f"a SQLite database has no host ({parts.netloc.rpartition('@')[2]!r}); {ACCEPTED_URLS}",
        )
    raw = unquote(parts.path)
    # sqlite:///x.db has the path "/x.db" (relative x.db), sqlite:////x.db has "//x.db".
    path_text = raw[1:] if raw.startswith("/") else raw
    if not path_text or path_text == ":memory:":
        raise ConfigurationError(
            setting,
            url,
            "an in-memory database is invisible to other processes; give a file: " + ACCEPTED_URLS,
        )
    if parts.fragment:
        raise ConfigurationError(setting, url, f"no #fragment; {ACCEPTED_URLS}")
    timeout = DEFAULT_TIMEOUT
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "timeout":
            raise ConfigurationError(
                setting, url, f"unknown parameter {name!r}: the only one is timeout=<seconds>"
            )
        try:
            timeout = float(value)
        except ValueError:
            timeout = -1.0
        if not timeout >= 0:  # also rejects NaN
            raise ConfigurationError(setting, url, "timeout must be a number of seconds >= 0")
    path = Path(path_text)
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    return SqliteLocation(path=path, timeout=timeout)


@attrs.define
class Database:
    """One SQLite file and this process's connection to it."""

    location: SqliteLocation
    _conn: sqlite3.Connection | None = attrs.field(default=None, init=False, repr=False)
    _pid: int = attrs.field(default=0, init=False, repr=False)
    #: Connections inherited through fork: never used again, and never closed in the child
    #: (closing may checkpoint or drop the parent's WAL), only kept from the garbage collector.
    _inherited: list[sqlite3.Connection] = attrs.field(factory=list, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    @classmethod
    def open(cls, location: SqliteLocation, *, setting: str = "redbeat_url") -> Database:
        """Open (creating if needed) the file now, so that a bad path fails at start-up with
        the setting's name instead of in the first tick."""
        database = cls(location)
        if not location.path.parent.is_dir():
            raise ConfigurationError(
                setting,
                str(location.path),
                f"the directory {location.path.parent} does not exist; create it first",
            )
        try:
            with database._lock:
                database._connection()
        except (sqlite3.Error, StoreUnavailableError) as exc:
            raise ConfigurationError(
                setting, str(location.path), f"cannot open it as a SQLite database: {exc}"
            ) from exc
        return database

    @property
    def path(self) -> Path:
        return self.location.path

    # ----------------------------------------------------------------- connection

    def _connection(self) -> sqlite3.Connection:
        """The process's connection (callers hold ``_lock``)."""
        pid = os.getpid()
        if self._conn is not None and self._pid != pid:
            self._inherited.append(self._conn)
            self._conn = None
        if self._conn is None:
            self._conn = self._connect()
            self._pid = pid
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every one is an explicit BEGIN.
        # timeout: SQLite's busy_timeout, how long a write waits for another's lock.
        conn = sqlite3.connect(
            self.location.path,
            timeout=self.location.timeout,
            isolation_level=None,
            check_same_thread=False,  # shared by threads, serialised by self._lock
        )
        try:
            mode = self._enable_wal(conn)
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(
                    f"journal_mode is {mode!r}, WAL could not be enabled for {self.path}"
                )
            self._ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, waiting up to ``timeout`` for another process.

        Converting a new file to WAL takes an exclusive lock and, unlike other statements,
        does not wait for SQLite's busy timeout: when two processes open a new file at the
        same moment (beats deployed together), one got "database is locked" at once and
        failed to start. Nothing signals when the other is done, so this polls, with the
        same deadline a write has.
        """
        deadline = time.monotonic() + self.location.timeout
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(_BUSY_POLL)

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"schema version {version} was written by a newer redbeat-sqlite "
                    f"(this one knows {SCHEMA_VERSION}); upgrade redbeat-sqlite"
                )
            if version < SCHEMA_VERSION:
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # ----------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: ``BEGIN IMMEDIATE`` for writes (the write lock is taken up front,
        so a read-then-write never fails half-way on another writer), a deferred ``BEGIN`` for
        reads (one consistent snapshot). Committed on success, rolled back on any error.

        SQLite's operational errors (the file is locked past ``timeout``, I/O errors) become
        :class:`StoreUnavailableError`: the scheduler keeps its loop alive on those.
        """
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"SQLite database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection; the next transaction opens a new one."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()
