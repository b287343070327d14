"""celery-redbeat's ``redbeat.schedules``: the ``rrule`` schedule, plus RedBeat's one-off
``clocked``, its ``crontab`` with a time zone of its own and a stated DST policy, and Celery's
``solar``."""

from redbeat_core.schedules import clocked, crontab, rrule, solar

__all__ = ["clocked", "crontab", "rrule", "solar"]
