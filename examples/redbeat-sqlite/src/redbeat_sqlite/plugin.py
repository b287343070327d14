"""Registers the ``sqlite://`` URL scheme with RedBeat.

Loaded through the entry point ``sqlite`` in the group ``redbeat`` once the distribution is
installed, or by import path with ``redbeat_plugins = ["redbeat_sqlite.plugin"]`` (which also
works when ``REDBEAT_DISABLE_PLUGIN_AUTOLOAD=1`` stops entry-point loading).
"""

from __future__ import annotations

from redbeat_core import hookimpl
from redbeat_core.registry import BackendRegistry
from redbeat_sqlite.backend import SqliteBackend
from redbeat_sqlite.database import SCHEME


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    registry.register(SCHEME, SqliteBackend.create, owner="redbeat-sqlite")
