"""RedBeat: a Celery beat scheduler that keeps its schedule in Redis.

Drop-in for celery-redbeat: ``celery beat -S redbeat.RedBeatScheduler`` and
``from redbeat import RedBeatSchedulerEntry`` keep working, with the same settings and data.
"""

from redbeat._conflict import refuse_celery_redbeat

refuse_celery_redbeat()

from redbeat_core.catalog import EntryInfo, EntryNotFoundError, EntryState, Schedule  # noqa: E402
from redbeat_core.entry import RedBeatSchedulerEntry  # noqa: E402
from redbeat_core.exceptions import InvalidEntryError  # noqa: E402
from redbeat_core.hookspecs import hookimpl  # noqa: E402
from redbeat_core.scheduler import RedBeatScheduler  # noqa: E402

__all__ = [
    "EntryInfo",
    "EntryNotFoundError",
    "EntryState",
    "InvalidEntryError",
    "RedBeatScheduler",
    "RedBeatSchedulerEntry",
    "Schedule",
    "hookimpl",
]
__version__ = "0.1.0"
