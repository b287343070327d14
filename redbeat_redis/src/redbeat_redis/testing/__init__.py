"""Real Valkey/Redis processes for tests of RedBeat and of anything built on Redis.

``servers`` starts and stops one server, ``sentinel`` a Sentinel topology, ``cluster`` a
Redis Cluster, ``tls`` makes throwaway certificates; ``pytest_plugin`` (registered as the
pytest11 entry point ``redbeat``) offers servers as ``redbeat_*`` fixtures. Only that plugin
imports pytest: ``redbeat demo`` and the benchmarks use the rest without it.

The storage-neutral kit (the backend contract suite and ``celery_apps``) stays in
``redbeat_core.testing``.
"""

from __future__ import annotations

from redbeat_redis.testing.servers import (
    INSTALL_HINTS,
    KINDS,
    ServerConnectionError,
    ServerError,
    ServerNotFoundError,
    ServerProcess,
    ServerReplyError,
    ServerStartError,
    connect,
    find_server_binaries,
    free_port,
    start_server,
)

__all__ = [
    "INSTALL_HINTS",
    "KINDS",
    "ServerConnectionError",
    "ServerError",
    "ServerNotFoundError",
    "ServerProcess",
    "ServerReplyError",
    "ServerStartError",
    "connect",
    "find_server_binaries",
    "free_port",
    "start_server",
]
