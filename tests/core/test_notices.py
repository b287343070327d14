"""Start-up warnings are never lost: ``celery beat`` builds the backend for its banner before
it sets up logging (Celery's loggers drop records until then), so a warning nobody would see
is kept and logged when the scheduler starts."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from redbeat_core import notices
from redbeat_core.plugins import PluginManager


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def silent_logger() -> Iterator[logging.Logger]:
    """A logger whose records nobody sees, as Celery's before ``celery beat`` sets up logging
    (a ``NullHandler``). Made outside the logging tree, where pytest would attach its own."""
    logger = logging.Logger("redbeat-test-notices")
    logger.addHandler(logging.NullHandler())
    try:
        yield logger
    finally:
        notices.flush()


def test_a_warning_nobody_sees_is_kept_until_the_scheduler_starts(
    silent_logger: logging.Logger,
) -> None:
    notices.warn(silent_logger, "verification is off for %s", "db://h.invalid")
    recorder = Recorder()
    silent_logger.addHandler(recorder)  # what setting up logging does
    assert recorder.messages == []
    PluginManager.load([], autoload=False).scheduler_started(scheduler=None)
    PluginManager.load([], autoload=False).scheduler_started(scheduler=None)
    assert recorder.messages == ["verification is off for db://h.invalid"]  # once


def test_a_warning_someone_sees_is_logged_at_once(silent_logger: logging.Logger) -> None:
    recorder = Recorder()
    silent_logger.addHandler(recorder)
    notices.warn(silent_logger, "now")
    assert recorder.messages == ["now"]
    notices.flush()
    assert recorder.messages == ["now"]
