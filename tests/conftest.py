"""Shared fixtures. Real servers come from the ``redbeat`` pytest plugin shipped in
``redbeat_core.testing`` (fixtures ``redbeat_server`` and ``redbeat_url``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

_app_names = itertools.count()


@pytest.fixture
def make_app(redbeat_url: str) -> Iterator[Any]:
    """Build Celery apps wired to the test server (``memory://`` broker), closed afterwards."""
    apps: list[Celery] = []

    def make(**conf: Any) -> Celery:
        app = Celery(f"redbeat-test-{next(_app_names)}", set_as_current=False)
        app.conf.update(
            {
                "broker_url": "memory://",
                "redbeat_redis_url": redbeat_url,
                "beat_max_loop_interval": 5,
                **conf,
            }
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        runtime = getattr(app, "redbeat_runtime", None)
        if runtime is not None:
            runtime.close()
        app.close()


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app()
