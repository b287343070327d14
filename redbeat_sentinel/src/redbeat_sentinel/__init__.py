"""RedBeat's Redis Sentinel backend: the Redis store and lock on a client that follows the
master through failovers. Installed by the extra ``redbeat[sentinel]``; selected by the URL
schemes ``redis+sentinel://``, ``rediss+sentinel://`` and celery-redbeat's ``redis-sentinel://``."""

from __future__ import annotations

from redbeat_sentinel.backend import client_for, create
from redbeat_sentinel.settings import SCHEMES, SentinelSettings, read_settings

__all__ = ["SCHEMES", "SentinelSettings", "client_for", "create", "read_settings"]
