"""RedBeat's storage-agnostic core: the Celery scheduler, entry model, codec, interfaces,
settings and plugin hooks. Nothing here imports a storage client.

Every type a hook receives is importable from here.
"""

from redbeat_core.codec import Codec
from redbeat_core.config import RedBeatConfig
from redbeat_core.doctor import Finding, Verdict
from redbeat_core.exceptions import (
    BrokenStoreError,
    ConfigurationError,
    EntryDecodeError,
    InvalidEntryError,
    LockNotOwnedError,
    PluginError,
    RedBeatError,
    StorePermissionError,
    StoreUnavailableError,
    UnknownBackendError,
)
from redbeat_core.hookspecs import hookimpl, hookspec
from redbeat_core.registry import BackendRegistry
from redbeat_core.settings import InvalidValue, Setting, SettingRegistry, Settings
from redbeat_core.typing import Backend, Fence, Lock, ScheduleStore, StoredEntry

# Last: these import Celery's beat machinery and the modules above.
from redbeat_core.entry import RedBeatSchedulerEntry  # isort: skip
from redbeat_core.catalog import EntryInfo, EntryNotFoundError, EntryState, Schedule  # isort: skip
from redbeat_core.runs import Decision, Dispatched, DueRun, DueRuns, Skipped  # isort: skip
from redbeat_core.scheduler import RedBeatScheduler  # isort: skip

__all__ = [
    "Backend",
    "BackendRegistry",
    "BrokenStoreError",
    "Codec",
    "ConfigurationError",
    "Decision",
    "Dispatched",
    "DueRun",
    "DueRuns",
    "EntryDecodeError",
    "EntryInfo",
    "EntryNotFoundError",
    "EntryState",
    "Fence",
    "Finding",
    "InvalidEntryError",
    "InvalidValue",
    "Lock",
    "LockNotOwnedError",
    "PluginError",
    "RedBeatConfig",
    "RedBeatError",
    "RedBeatScheduler",
    "RedBeatSchedulerEntry",
    "Schedule",
    "ScheduleStore",
    "Setting",
    "SettingRegistry",
    "Settings",
    "Skipped",
    "StorePermissionError",
    "StoreUnavailableError",
    "StoredEntry",
    "UnknownBackendError",
    "Verdict",
    "hookimpl",
    "hookspec",
]
__version__ = "0.1.0"
