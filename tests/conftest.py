"""Shared fixtures. Real servers come from the ``redbeat`` pytest plugin shipped in
``redbeat_redis.testing`` (fixtures ``redbeat_server`` and ``redbeat_url``); the ``tests(core)``
nox session has no such plugin and none of its tests asks for them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redbeat_core.testing.apps import celery_apps

#: The network guard: no test connects outside 127.0.0.1, in this process or its children.
GUARD = Path(__file__).resolve().parent / "_network_guard"
sys.path.insert(0, str(GUARD))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD), os.environ.get("PYTHONPATH")]))

import redbeat_network_guard  # noqa: E402

redbeat_network_guard.install()


@pytest.fixture
def make_app(redbeat_url: str) -> Iterator[Any]:
    """Build Celery apps wired to the test server (``memory://`` broker), closed afterwards."""
    with celery_apps(redbeat_url) as make:
        yield make


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app()


@pytest.fixture
def client(redbeat_url: str) -> Iterator[Any]:
    """A decoding client on the test's server, to look at what RedBeat stored."""
    import redis  # here: the core-only session has no redis-py, and asks for no server

    conn = redis.Redis.from_url(redbeat_url, decode_responses=True)
    try:
        yield conn
    finally:
        conn.close()
