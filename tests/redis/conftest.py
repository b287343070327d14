"""Fixtures shared by the Redis tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import before_task_publish


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    """The headers of every message published while the test runs, in order (task name,
    task id, and the headers RedBeat adds)."""
    messages: list[dict[str, Any]] = []

    def record(headers: Any = None, **_: Any) -> None:
        messages.append(dict(headers or {}))

    before_task_publish.connect(record, weak=False)
    yield messages
    before_task_publish.disconnect(record)
