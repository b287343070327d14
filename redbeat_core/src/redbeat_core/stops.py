"""Holding a stop signal while a tick's committed runs are published.

Under at-most-once the commit stores the tick's runs as run before they are published: a run
committed and then not published is lost. ``celery beat`` stops on SIGTERM and SIGINT with a
handler that closes the scheduler and raises ``SystemExit`` wherever the beat happens to be;
between the commit and the last publish that can be in an observer, a log line, the lease
check or the commit's own reply, and the committed runs were lost without a word.

:func:`held_stops` moves the stop to the end of that stretch instead of guarding each place
it could land: while it is active the stop signals only note that a stop was asked for, and
when it ends the previous handlers are put back and the noted signal is raised again, so
Celery's own handler runs (closing the scheduler, raising ``SystemExit``) once nothing
committed can be lost. A second stop meanwhile is obeyed at once, whatever is lost: an
operator who insists is not kept waiting.

Signal handlers can only be set in the main thread. A beat running in another thread
(``celery worker -B`` in thread mode, tests) gets no hold; there the dispatch's own guard
still keeps publishing after a ``SystemExit`` that lands in a wait or in ``apply_async``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Final

logger = logging.getLogger("celery.beat")

#: The signals ``celery beat`` stops on (``celery.apps.beat.install_sync_handler``).
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

#: The stop held by the active :func:`held_stops`, if any (one hold at a time: the main thread).
_held: list[int] = []


def stop_was_held() -> bool:
    """Whether a stop is being held: a ``SystemExit`` raised now comes from a second one, which
    the dispatch's own guard must not hold again."""
    return bool(_held)


@contextlib.contextmanager
def held_stops(what: str) -> Iterator[None]:
    """Hold SIGTERM and SIGINT until the block ends, then deliver the first one that came to
    the handler that was there before. ``what`` says what the beat finishes first, for the
    warning logged when a stop is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    held = _held
    held.clear()

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        previous.clear()

    def hold(signum: int, frame: FrameType | None) -> None:
        if held:  # a second stop: obey it now (and not again when the block ends)
            restore()
            held.append(signum)
            signal.raise_signal(signum)
            return
        held.append(signum)
        logger.warning(
            "beat: %s received; %s before stopping (stop again to stop at once)",
            signal.Signals(signum).name,
            what,
        )

    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not None:  # None: set outside Python, not restorable
            previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        restore()
        first = held[0] if len(held) == 1 else None  # two: the second was obeyed already
        held.clear()
        if first is not None:
            signal.raise_signal(first)  # Celery's handler runs now, in this frame
