"""RedBeat's storage-agnostic core: the Celery scheduler, entry model, codec, interfaces and
plugin hooks. Nothing here imports a storage client."""

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import (
    ConfigurationError,
    EntryDecodeError,
    PluginError,
    RedBeatError,
    StoreUnavailableError,
    UnknownBackendError,
)
from redbeat_core.hookspecs import hookimpl, hookspec

__all__ = [
    "ConfigurationError",
    "EntryDecodeError",
    "PluginError",
    "RedBeatConfig",
    "RedBeatError",
    "StoreUnavailableError",
    "UnknownBackendError",
    "hookimpl",
    "hookspec",
]
__version__ = "0.1.0"
