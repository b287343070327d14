"""The Celery app that ``redbeat demo`` runs in its ``celery beat`` and ``celery worker``.

Both processes get the server's address in :data:`URL_ENV` (``redis://127.0.0.1:<port>``); the
schedule lives in database 0, the broker in database 1. Everything the demo shows is pushed,
as one JSON object per event, onto the list :data:`EVENTS_KEY` in database 0:

* ``ready``: the worker can take tasks (Celery's ``worker_ready`` signal);
* ``leader``: the beat holds the lock and dispatches (RedBeat's ``redbeat_lock_acquired`` hook);
* ``sent``: the beat published an entry, with its due and publish times
  (``redbeat_after_dispatch``);
* ``ran``: the worker ran the task, with the time it started.

The beat loads :data:`plugin` through the ``redbeat_plugins`` setting, so the demo also shows
how a plugin observes dispatches. Nothing here is used by a production beat.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any, Final

from celery import Celery
from celery.signals import worker_ready

from redbeat_core.hookspecs import hookimpl

__all__ = [
    "BROKER_DB",
    "EVENTS_KEY",
    "REPORT_TASK",
    "SAY_TASK",
    "SCHEDULE_DB",
    "URL_ENV",
    "DemoPlugin",
    "app",
    "demo_settings",
    "plugin",
]

#: Environment variable with the server's base URL, without a database number.
URL_ENV: Final = "REDBEAT_DEMO_URL"
SCHEDULE_DB: Final = 0
BROKER_DB: Final = 1
#: The list (in the schedule's database) that every demo event is pushed onto.
EVENTS_KEY: Final = "redbeat-demo:events"
SAY_TASK: Final = "redbeat._demo_app.say"
REPORT_TASK: Final = "redbeat._demo_app.report"
_PLUGIN_PATH: Final = "redbeat._demo_app:plugin"

logger = logging.getLogger(__name__)


def demo_settings(base_url: str, *, with_plugin: bool = True) -> dict[str, Any]:
    """The demo's Celery settings for a server at ``base_url`` (``redis://host:port``)."""
    return {
        "broker_url": f"{base_url}/{BROKER_DB}",
        "redbeat_redis_url": f"{base_url}/{SCHEDULE_DB}",
        # A short loop, so that entries saved at runtime are picked up within a second.
        "beat_max_loop_interval": 1,
        "redbeat_plugins": [_PLUGIN_PATH] if with_plugin else [],
        "broker_connection_retry_on_startup": True,
        "timezone": "UTC",
    }


# Not the current app: `redbeat demo` imports this module for its constants, and must not
# change which app `celery.current_app` is in the importing process.
app = Celery("redbeat-demo", set_as_current=False)
app.conf.update(demo_settings(os.environ.get(URL_ENV, "redis://127.0.0.1:6379")))

_client: Any = None


def _events() -> Any:
    """This process's client for the events list (created on first use)."""
    global _client  # noqa: PLW0603 - one client per process, built lazily
    if _client is None:
        import redis

        _client = redis.Redis.from_url(app.conf.redbeat_redis_url)
    return _client


def _push(kind: str, **fields: Any) -> None:
    _events().rpush(EVENTS_KEY, json.dumps({"kind": kind, "pid": os.getpid(), **fields}))


# --------------------------------------------------------------------------------- tasks


def _run(request: Any, task: str, entry: str, text: str) -> str:
    ran_at = time.time()
    line = f"{entry}: {text}"
    logger.info("demo task %s ran for entry %r at %.3f: %s", task, entry, ran_at, text)
    _push("ran", entry=entry, task=task, task_id=request.id, ran_at=ran_at, text=text)
    return line


def _say(self: Any, entry: str = "?", text: str = "hello") -> str:
    """Say something; the demo's interval and one-off entries run this."""
    return _run(self.request, SAY_TASK, entry, text)


def _report(self: Any, entry: str = "?") -> str:
    """Report the time; the demo's crontab entry runs this."""
    return _run(self.request, REPORT_TASK, entry, time.strftime("it is %H:%M:%S"))


say: Any = app.task(bind=True, name=SAY_TASK)(_say)
report: Any = app.task(bind=True, name=REPORT_TASK)(_report)


def _on_worker_ready(**_: Any) -> None:
    _push("ready")


worker_ready.connect(_on_worker_ready, weak=False)


# --------------------------------------------------------------------------------- plugin


class DemoPlugin:
    """A RedBeat plugin (loaded by the beat through ``redbeat_plugins``) that reports the
    beat's lock and every dispatch to the demo."""

    @hookimpl
    def redbeat_lock_acquired(self, scheduler: Any, fence: Any) -> None:
        _push("leader", epoch=getattr(fence, "epoch", None))

    @hookimpl
    def redbeat_after_dispatch(self, scheduler: Any, dispatched: Sequence[Any]) -> None:
        for record in dispatched:
            _push(
                "sent",
                entry=record.entry.name,
                task_id=getattr(record.result, "id", None),
                due_at=record.due_at,
                sent_at=record.published_at,
            )


plugin = DemoPlugin()
