"""Fixtures of the chaos tests (see harness.py)."""

from __future__ import annotations

import os

import pytest
from chaos.harness import server_kind

from redbeat_redis.testing import servers


@pytest.fixture(scope="session")
def chaos_kind() -> str:
    """The server kind (valkey first); a missing server skips locally and fails in CI."""
    try:
        return server_kind()
    except servers.ServerNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}. A missing server fails in CI.", pytrace=False)
        pytest.skip(str(exc))
