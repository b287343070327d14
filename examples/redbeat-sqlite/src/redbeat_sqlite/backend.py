"""The SQLite backend: what a ``sqlite://`` storage URL builds."""

from __future__ import annotations

from typing import Any

import attrs

from redbeat_core.config import RedBeatConfig
from redbeat_core.typing import Lock
from redbeat_sqlite.database import Database, parse_url
from redbeat_sqlite.lock import SqliteLock
from redbeat_sqlite.store import SqliteStore


@attrs.define
class SqliteBackend:
    """A :class:`~redbeat_core.typing.Backend`: a store and a lock on one database file."""

    config: RedBeatConfig
    database: Database
    store: SqliteStore

    @classmethod
    def create(cls, config: RedBeatConfig, app: Any) -> SqliteBackend:
        """The backend for ``config.url``; the file is opened (and created) at once, so a bad
        URL or path fails at start-up naming the setting it came from."""
        location = parse_url(config.url, setting=config.url_setting)
        database = Database.open(location, setting=config.url_setting)
        return cls(config=config, database=database, store=SqliteStore(database))

    def make_lock(self, config: RedBeatConfig) -> Lock:
        if config.lock_key is None:
            raise ValueError("redbeat_lock_key is None: run without a lock (NullLock)")
        return SqliteLock(self.database, key=config.lock_key, ttl=config.lock_timeout)

    def describe(self) -> str:
        return f"sqlite -> {self.database.path}"
