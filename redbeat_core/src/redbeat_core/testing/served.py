"""A test-only storage backend that serves a store the test already holds.

The contract suite runs a real ``RedBeatScheduler`` on a backend's store without knowing how
that backend is configured: it serves the store under a URL of the test-only scheme
``redbeat-served://<token>`` and builds a Celery app whose ``redbeat_url`` is that URL and
whose ``redbeat_plugins`` names this module, so the scheduler finds the store through the
public plugin hook, as it finds any backend::

    with scheduler_app(store) as app:
        scheduler = RedBeatScheduler(app=app)

The app runs without a lock (``redbeat_lock_key = None``): the store's fencing is the lock
contract's business, and a served store has no lock of its own.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.hookspecs import hookimpl
from redbeat_core.registry import BackendRegistry
from redbeat_core.typing import Lock, ScheduleStore

__all__ = ["PLUGIN", "SCHEME", "ServedBackend", "scheduler_app", "serve"]

SCHEME: Final = "redbeat-served"
#: The import path to put in ``redbeat_plugins``.
PLUGIN: Final = __name__

_served: dict[str, ScheduleStore] = {}
_served_lock = threading.Lock()
_app_names = itertools.count()


@attrs.define
class ServedBackend:
    """The :class:`~redbeat_core.typing.Backend` for one served store."""

    store: ScheduleStore

    def make_lock(self, config: RedBeatConfig) -> Lock:
        raise ConfigurationError(
            "redbeat_lock_key",
            config.lock_key,
            "None: a served store has no lock of its own (run the scheduler without one)",
        )

    def describe(self) -> str:
        return f"{SCHEME} -> {type(self.store).__name__}"


def _create(config: RedBeatConfig, app: Any) -> ServedBackend:
    token = urlsplit(config.url).netloc
    with _served_lock:
        store = _served.get(token)
    if store is None:
        raise ConfigurationError(
            config.url_setting, config.url, "a URL given by serve(), while its block runs"
        )
    return ServedBackend(store)


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    registry.register(SCHEME, _create, owner="redbeat_core.testing.served")


@contextmanager
def serve(store: ScheduleStore) -> Iterator[str]:
    """Serve ``store`` under a new ``redbeat-served://`` URL until the block ends."""
    token = uuid.uuid4().hex
    with _served_lock:
        _served[token] = store
    try:
        yield f"{SCHEME}://{token}"
    finally:
        with _served_lock:
            del _served[token]


@contextmanager
def scheduler_app(store: ScheduleStore, **conf: Any) -> Iterator[Any]:
    """A Celery app whose RedBeat storage is ``store``, broker ``memory://``, no beat lock and
    no GC freeze (it is a test process); ``conf`` adds or overrides settings. On exit the app's
    RedBeat runtime is closed (which closes the store: it reconnects if used again)."""
    from celery import Celery

    with serve(store) as url:
        app = Celery(f"redbeat-served-{next(_app_names)}", set_as_current=False)
        app.conf.update(
            {
                "broker_url": "memory://",
                "redbeat_url": url,
                "redbeat_plugins": [PLUGIN],
                "redbeat_lock_key": None,
                "redbeat_gc_freeze": False,
                "beat_max_loop_interval": 1,
                **conf,
            }
        )
        try:
            yield app
        finally:
            runtime = getattr(app, "redbeat_runtime", None)
            if runtime is not None:
                runtime.close()
            app.close()
