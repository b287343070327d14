"""Shared fixtures. Real servers come from the ``redbeat`` pytest plugin shipped in
``redbeat_redis.testing`` (fixtures ``redbeat_server`` and ``redbeat_url``); the ``tests(core)``
nox session has no such plugin and none of its tests asks for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from redbeat_core.testing.apps import celery_apps


@pytest.fixture
def make_app(redbeat_url: str) -> Iterator[Any]:
    """Build Celery apps wired to the test server (``memory://`` broker), closed afterwards."""
    with celery_apps(redbeat_url) as make:
        yield make


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app()
