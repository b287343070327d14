"""Test helpers for RedBeat and for authors of storage backends.

``servers`` starts real Valkey/Redis processes; ``pytest_plugin`` (registered as the pytest11
entry point ``redbeat``) offers them as ``redbeat_*`` fixtures. Nothing here imports a Redis
client, so ``redbeat_core`` stays importable without one.
"""

from __future__ import annotations

from redbeat_core.testing.apps import celery_apps
from redbeat_core.testing.servers import (
    INSTALL_HINTS,
    KINDS,
    ServerError,
    ServerNotFoundError,
    ServerProcess,
    ServerReplyError,
    ServerStartError,
    find_server_binaries,
    free_port,
    send_command,
    start_server,
)

__all__ = [
    "INSTALL_HINTS",
    "KINDS",
    "ServerError",
    "ServerNotFoundError",
    "ServerProcess",
    "ServerReplyError",
    "ServerStartError",
    "celery_apps",
    "find_server_binaries",
    "free_port",
    "send_command",
    "start_server",
]
