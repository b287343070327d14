"""Start-up warnings that reach someone.

``celery beat`` prints its banner before it sets up logging, and the banner builds RedBeat's
backend (its line names the storage). Until logging is set up, Celery's loggers drop every
record (they carry a ``NullHandler``), so a warning logged while a backend is built (TLS
certificate verification turned off, say) would be lost in the very process it is about.

:func:`warn` logs at once when a handler will show the record, and otherwise keeps it until
the scheduler starts: RedBeat's default plugin calls :func:`flush` from
``redbeat_scheduler_started`` (the first tick, once ``celery beat`` has set up logging). In a
process where logging is already set up (a web app saving entries, a test) nothing waits.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["flush", "warn"]

_pending: list[tuple[logging.Logger, str, tuple[Any, ...]]] = []
_lock = threading.Lock()


def warn(logger: logging.Logger, message: str, *args: Any) -> None:
    """``logger.warning(message, *args)`` now if someone will see it, else at start-up."""
    if _shown(logger, logging.WARNING):
        logger.warning(message, *args)
        return
    with _lock:
        _pending.append((logger, message, args))


def flush() -> None:
    """Log the warnings kept back until now (each once)."""
    with _lock:
        pending = list(_pending)
        _pending.clear()
    for logger, message, args in pending:
        logger.warning(message, *args)


def _shown(logger: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` reaches a handler that is not a ``NullHandler`` (what
    ``Logger.callHandlers`` would do with it, Python's last-resort handler included)."""
    if not logger.isEnabledFor(level):
        return False
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if not isinstance(handler, logging.NullHandler) and level >= handler.level:
                return True
        if not current.propagate:
            break
        current = current.parent
    return not found and logging.lastResort is not None and level >= logging.lastResort.level
