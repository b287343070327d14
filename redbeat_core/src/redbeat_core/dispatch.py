"""Publishing a tick's runs through Celery's own ``Scheduler.apply_async``.

Each entry is published at its due time (entries prepared ahead wait for it), through the
scheduler's one producer, so routing, signals and task classes that override ``apply_async``
all behave as with Celery's own beat. One failed publish never stops the others.

A stop (SIGTERM, Ctrl-C: celery beat's handler closes the scheduler, then raises
``SystemExit`` wherever the beat is) that arrives during the publishes must not lose runs that
are already committed: under at-most-once the rest are published first (at once, at most
``redbeat_prepare_ahead`` early) and the stop is raised after; under at-least-once nothing is
committed yet and the next leader publishes them, so it is raised at once. A second stop is
obeyed at once, whatever is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from redbeat_core.runs import Dispatched

if TYPE_CHECKING:
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.scheduler import RedBeatScheduler

logger = logging.getLogger("celery.beat")


def publish(
    scheduler: RedBeatScheduler,
    due: Sequence[tuple[RedBeatSchedulerEntry, float]],
    *,
    at_most_once: bool,
) -> None:
    """``apply_async`` for each ``(entry, due time)``, each at its due time; reports every
    publish to ``redbeat_after_dispatch`` (one call) and every failure to
    ``redbeat_dispatch_failed``. Raises the stop that arrived meanwhile, once it may."""
    plugins = scheduler.plugins
    observed = bool(plugins.after_dispatch)
    dispatched: list[Dispatched] = []
    producer = scheduler.producer
    stop: BaseException | None = None
    for index, (entry, due_at) in enumerate(due):
        # Prepared ahead (prepare_ahead): never published before its due time. A loop, as
        # sleep keeps the monotonic clock and the due time is on the wall clock.
        try:
            while stop is None and (early := due_at - time.time()) > 0:
                time.sleep(early)
        except (SystemExit, KeyboardInterrupt) as exc:
            where = f"{due_at - time.time():.3f}s before a due time"
            stop = _keep_publishing(exc, stop, where, len(due) - index, at_most_once)
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            result = scheduler.apply_async(entry, producer=producer, advance=False)
        except (SystemExit, KeyboardInterrupt) as exc:
            where = f"while publishing {entry.name!r} (it may not have been sent)"
            stop = _keep_publishing(exc, stop, where, len(due) - index - 1, at_most_once)
            continue
        except Exception as exc:
            logger.exception("beat: cannot publish %r: %s", entry.name, exc)
            plugins.dispatch_failed(scheduler=scheduler, entry=entry, exc=exc)
            continue
        if observed:
            dispatched.append(Dispatched(entry, due_at, time.time(), result))
    if observed:
        plugins.after_dispatch(scheduler=scheduler, dispatched=dispatched)
    if stop is not None:
        raise stop  # the stop that arrived mid-dispatch, now that no committed run is lost


def _keep_publishing(
    exc: BaseException,
    earlier: BaseException | None,
    where: str,
    remaining: int,
    at_most_once: bool,
) -> BaseException:
    """A stop arrived during dispatch: return it to raise after the remaining publishes when
    their runs are committed (at-most-once, first stop); raise it at once otherwise."""
    if not at_most_once or earlier is not None:
        raise exc
    logger.warning(
        "beat: stopping %s; publishing the tick's %d remaining entries first, as their runs "
        "are committed (stop again to stop at once)",
        where,
        remaining,
    )
    return exc
