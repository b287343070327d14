"""Registers the Sentinel backend with RedBeat (entry point ``sentinel`` in the group ``redbeat``)
for the schemes ``redis+sentinel``, ``rediss+sentinel`` and celery-redbeat's ``redis-sentinel``."""

from __future__ import annotations

from redbeat_core.hookspecs import hookimpl
from redbeat_core.registry import BackendRegistry
from redbeat_sentinel.backend import check_config, create
from redbeat_sentinel.settings import SCHEMES


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    for scheme in SCHEMES:
        registry.register(scheme, create, owner="redbeat-sentinel", adjust_config=check_config)
