"""Helpers that several test modules share.

``tests/`` is on pytest's ``pythonpath`` (see pyproject.toml) but is no package, so modules
import this one by its name. Only Celery and the standard library here: the core-only test
session imports it without any backend installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery.signals import before_task_publish


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail at the deadline (never a sleep as sync)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s", pytrace=False)
        time.sleep(0.02)


def ago(seconds: float) -> datetime:
    """An aware UTC instant ``seconds`` before now."""
    return datetime.now(UTC) - timedelta(seconds=seconds)


@dataclass
class Published:
    """Every publish in the test: (task name, routing key), in order."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        return [task for task, _ in self.calls]

    def by(self, routing_key: str) -> list[str]:
        return [task for task, key in self.calls if key == routing_key]


@contextmanager
def recording_publishes() -> Iterator[Published]:
    """Record every publish (Celery's ``before_task_publish``) while the block runs."""
    record = Published()

    def on_publish(headers: Any = None, routing_key: Any = None, **_: Any) -> None:
        record.calls.append((headers["task"], routing_key))

    before_task_publish.connect(on_publish, weak=False)
    try:
        yield record
    finally:
        before_task_publish.disconnect(on_publish)
