"""A RedBeat storage backend in one SQLite file: ``redbeat_url = "sqlite:////path/to/db"``.

An example of a third-party backend plugin: it uses only RedBeat's public interfaces
(:mod:`redbeat_core.typing`, the ``redbeat_register_backends`` hook) and the standard
library's :mod:`sqlite3`.
"""

from redbeat_sqlite.backend import SqliteBackend
from redbeat_sqlite.database import Database, SqliteLocation, parse_url
from redbeat_sqlite.lock import SqliteLock
from redbeat_sqlite.store import SqliteStore

__all__ = [
    "Database",
    "SqliteBackend",
    "SqliteLocation",
    "SqliteLock",
    "SqliteStore",
    "parse_url",
]
__version__ = "0.1.0"
