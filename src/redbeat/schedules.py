"""celery-redbeat's ``redbeat.schedules``: the ``rrule`` schedule, plus RedBeat's one-off
``clocked`` and Celery's ``solar``."""

from redbeat_core.schedules import clocked, rrule, solar

__all__ = ["clocked", "rrule", "solar"]
