"""RedBeat's own choices, registered as an ordinary plugin (``redbeat.defaults``): the core's
settings, the lock strategy as a ``trylast`` hook so that any other plugin's answer wins, and
the start-up warnings kept until logging is set up (:mod:`redbeat_core.notices`)."""

from __future__ import annotations

from typing import Any

from redbeat_core import notices
from redbeat_core.config import CORE_SETTINGS, RedBeatConfig
from redbeat_core.hookspecs import hookimpl
from redbeat_core.locks import NullLock
from redbeat_core.settings import CORE_OWNER, SettingRegistry
from redbeat_core.typing import Backend, Lock


@hookimpl(tryfirst=True)
def redbeat_register_settings(registry: SettingRegistry) -> None:
    """The core's settings, first: the reference lists them before the plugins' ones."""
    registry.add(*CORE_SETTINGS, owner=CORE_OWNER)


@hookimpl(trylast=True)
def redbeat_make_lock(config: RedBeatConfig, backend: Backend) -> Lock:
    """The backend's own lock, or none at all when ``redbeat_lock_key`` is None."""
    if config.lock_key is None:
        return NullLock()
    return backend.make_lock(config)


@hookimpl(tryfirst=True)
def redbeat_scheduler_started(scheduler: Any) -> None:
    """Log the start-up warnings that nobody could see when they were raised: ``celery beat``
    builds the backend for its banner before it sets up logging."""
    notices.flush()
