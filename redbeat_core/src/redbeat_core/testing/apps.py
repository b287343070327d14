"""Celery apps wired to a storage URL, for tests of the scheduler on any backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_names = itertools.count()


@contextmanager
def celery_apps(url: str, *, name: str = "redbeat-test") -> Iterator[Callable[..., Any]]:
    """Yield ``make(**conf)``, which builds Celery apps whose RedBeat storage is ``url`` and whose
    broker is ``memory://``; on exit every app's RedBeat runtime and clients are closed.

    Each call is a new app, as two processes would have: use two to test two beats.
    """
    from celery import Celery

    apps: list[Any] = []

    def make(**conf: Any) -> Any:
        app = Celery(f"{name}-{next(_names)}", set_as_current=False)
        app.conf.update(
            {
                "broker_url": "memory://",
                "redbeat_redis_url": url,
                "beat_max_loop_interval": 5,
                **conf,
            }
        )
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            runtime = getattr(app, "redbeat_runtime", None)
            if runtime is not None:
                runtime.close()
            for attribute in ("redbeat_redis", "redbeat_sentinel"):
                client = getattr(app, attribute, None)
                if client is not None and hasattr(client, "close"):
                    client.close()
            app.close()
