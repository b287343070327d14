"""Celery apps wired to a storage URL, for tests of the scheduler on any backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redbeat_core.runtime import RUNTIME_ATTRIBUTE, Runtime

_names = itertools.count()


def _names_a_storage_url(setting: str) -> bool:
    """True for ``redbeat_url`` and a backend's own URL setting (``redbeat_<backend>_url``):
    a test that passes one chooses its storage itself, and ``redbeat_url`` would win over it."""
    name = setting.lower()
    return name.startswith("redbeat_") and name.endswith("_url")


@contextmanager
def celery_apps(url: str, *, name: str = "redbeat-test") -> Iterator[Callable[..., Any]]:
    """Yield ``make(**conf)``, which builds Celery apps whose RedBeat storage is ``url`` (the
    storage-neutral setting ``redbeat_url``, unless ``conf`` names a storage URL itself) and
    whose broker is ``memory://``; on exit every app's RedBeat runtime is closed (its backend
    closes its own clients) and every app too.

    Each call is a new app, as two processes would have: use two to test two beats.
    """
    from celery import Celery

    apps: list[Any] = []

    def make(**conf: Any) -> Any:
        app = Celery(f"{name}-{next(_names)}", set_as_current=False)
        storage = {} if any(map(_names_a_storage_url, conf)) else {"redbeat_url": url}
        app.conf.update({"broker_url": "memory://", "beat_max_loop_interval": 5, **storage, **conf})
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            runtime = getattr(app, RUNTIME_ATTRIBUTE, None)
            if isinstance(runtime, Runtime):
                runtime.close()
            app.close()
