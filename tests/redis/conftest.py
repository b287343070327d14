"""Fixtures shared by the Redis tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis


@pytest.fixture
def client(redbeat_url: str) -> Iterator[Any]:
    """A decoding client on the test's server, to look at what RedBeat stored."""
    conn = redis.Redis.from_url(redbeat_url, decode_responses=True)
    try:
        yield conn
    finally:
        conn.close()
