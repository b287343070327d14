"""RedBeat's own strategy choices, registered as an ordinary plugin with ``trylast`` hooks so that
any other plugin's answer wins."""

from __future__ import annotations

from redbeat_core.config import RedBeatConfig
from redbeat_core.hookspecs import hookimpl
from redbeat_core.locks import NullLock
from redbeat_core.typing import Backend, Lock


@hookimpl(trylast=True)
def redbeat_make_lock(config: RedBeatConfig, backend: Backend) -> Lock:
    """The backend's own lock, or none at all when ``redbeat_lock_key`` is None."""
    if config.lock_key is None:
        return NullLock()
    return backend.make_lock(config)
