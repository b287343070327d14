"""Publishing a tick's runs through Celery's own ``Scheduler.apply_async``.

Each entry is published at its due time (entries prepared ahead wait for it), through the
scheduler's one producer, so routing, signals and task classes that override ``apply_async``
all behave as with Celery's own beat. One failed publish never stops the others.

Before each publish the lease is checked against the local monotonic clock: a beat paused
between its fenced round trip and its publishes (a GC pause, SIGSTOP, a stalled VM) may have
lost the lock to another beat in the meantime without knowing it, and must not publish then.
What is not published is returned, for the delivery mode to deal with (at-most-once: the runs
are committed, so they are lost and logged; at-least-once: they stay due).

A stop (SIGTERM, Ctrl-C: celery beat's handler closes the scheduler, then raises
``SystemExit`` wherever the beat is) that arrives during the publishes must not lose runs that
are already committed. In the main thread the scheduler holds the stop signals from the
at-most-once commit to the last publish (:mod:`redbeat_core.stops`). Elsewhere (a beat in a
thread) the guard here catches a ``SystemExit`` that lands in a wait or in ``apply_async``:
under at-most-once the rest are published first (at once, at most ``redbeat_prepare_ahead``
early) and the stop is raised after; under at-least-once nothing is committed yet and the next
leader publishes them, so it is raised at once. A second stop is obeyed at once, whatever is
lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from redbeat_core.runs import Dispatched
from redbeat_core.stops import stop_was_held
from redbeat_core.summary import LATE_AFTER

if TYPE_CHECKING:
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.scheduler import RedBeatScheduler

logger = logging.getLogger("celery.beat")

#: Publishes failing in a row, under at-least-once, after which the broker is taken to be down
#: and the tick's other runs are left due rather than each tried (every try waits for Celery's
#: publish retries: seconds per run, while the lease runs out).
BROKER_DOWN_AFTER: Final = 3


@attrs.frozen
class Sent:
    """One publish, for the run history: the stored name, due and publish times, task id,
    and its place in the tick's list of runs."""

    name: str
    due_at: float
    published_at: float
    task_id: str | None
    index: int = 0


@attrs.frozen
class Published:
    """What a dispatch did, by the entries' stored names.

    :ivar failed: runs whose ``apply_async`` raised.
    :ivar unsent: runs not tried: the lease may have lapsed, or (at-least-once) the broker
        kept failing.
    """

    failed: tuple[str, ...] = ()
    unsent: tuple[str, ...] = ()
    #: Runs published more than ``LATE_AFTER`` seconds after their due time (for the
    #: leader's summary).
    late: int = 0
    #: The runs published, in order.
    sent: tuple[Sent, ...] = ()
    #: Why each failed run failed (the exception, one line), and why the unsent were not
    #: sent, by place in the tick's list of runs (an entry may run twice: run now).
    reasons: dict[int, str] = attrs.field(factory=dict)
    #: The places of the failed and unsent runs in the tick's list of runs.
    failed_at: tuple[int, ...] = ()
    unsent_at: tuple[int, ...] = ()

    def without(self, places: Collection[int]) -> Published:
        """The same, leaving out the runs at ``places`` (the run-now runs, which have no
        schedule to retry them on)."""
        if not places:
            return self
        failed = [
            (i, n) for i, n in zip(self.failed_at, self.failed, strict=True) if i not in places
        ]
        unsent = [
            (i, n) for i, n in zip(self.unsent_at, self.unsent, strict=True) if i not in places
        ]
        return attrs.evolve(
            self,
            failed=tuple(n for _, n in failed),
            failed_at=tuple(i for i, _ in failed),
            unsent=tuple(n for _, n in unsent),
            unsent_at=tuple(i for i, _ in unsent),
            sent=tuple(s for s in self.sent if s.index not in places),
        )


@attrs.define
class _Tally:
    """What a dispatch did so far, turned into :class:`Published` at its end."""

    sent: list[Sent] = attrs.Factory(list)
    failed: list[str] = attrs.Factory(list)
    failed_at: list[int] = attrs.Factory(list)
    reasons: dict[int, str] = attrs.Factory(dict)
    late: int = 0

    def note_sent(self, sent: Sent) -> None:
        if sent.published_at - sent.due_at > LATE_AFTER:
            self.late += 1
        self.sent.append(sent)

    def note_failed(self, name: str, index: int, exc: BaseException) -> None:
        self.failed.append(name)
        self.failed_at.append(index)
        self.reasons[index] = _why(exc)

    def result(self, unsent: tuple[str, ...] = (), unsent_at: tuple[int, ...] = ()) -> Published:
        return Published(
            tuple(self.failed),
            unsent,
            self.late,
            tuple(self.sent),
            self.reasons,
            tuple(self.failed_at),
            unsent_at,
        )


def publish(
    scheduler: RedBeatScheduler,
    due: Sequence[tuple[str, RedBeatSchedulerEntry, float]],
    *,
    at_most_once: bool,
    lease_ok: Callable[[], bool],
) -> Published:
    """``apply_async`` for each ``(name, entry, due time)``, each at its due time; reports
    every publish to ``redbeat_after_dispatch`` (one call) and every failure to
    ``redbeat_dispatch_failed``. Raises the stop that arrived meanwhile, once it may."""
    plugins = scheduler.plugins
    observed = bool(plugins.after_dispatch)
    dispatched: list[Dispatched] = []
    tally = _Tally()
    producer = scheduler.producer
    stop: BaseException | None = None
    failing = 0
    for index, (name, entry, due_at) in enumerate(due):
        # Prepared ahead (prepare_ahead): never published before its due time. A loop, as
        # sleep keeps the monotonic clock and the due time is on the wall clock.
        try:
            while stop is None and (early := due_at - time.time()) > 0:
                time.sleep(early)
        except (SystemExit, KeyboardInterrupt) as exc:
            where = f"{due_at - time.time():.3f}s before a due time"
            stop = _keep_publishing(exc, stop, where, len(due) - index, at_most_once)
        why = None
        if not lease_ok():
            why = "the lease may have lapsed while this beat waited"
        elif not at_most_once and failing >= BROKER_DOWN_AFTER:
            why = f"{failing} publishes failed in a row"
        if why is not None:
            unsent = tuple(n for n, _, _ in due[index:])
            _log_unsent(unsent, at_most_once, why)
            tally.reasons.update(dict.fromkeys(range(index, len(due)), why))
            done = tally.result(unsent, tuple(range(index, len(due))))
            return _done(scheduler, observed, dispatched, done, stop)
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            result = scheduler.apply_async(entry, producer=producer, advance=False)
        except (SystemExit, KeyboardInterrupt) as exc:
            where = f"while publishing {entry.name!r} (it may not have been sent)"
            stop = _keep_publishing(exc, stop, where, len(due) - index - 1, at_most_once)
            continue
        except Exception as exc:
            failing += 1
            tally.note_failed(name, index, exc)
            logger.exception(
                "beat: cannot publish %r: %s%s",
                entry.name,
                exc,
                "; its run is lost (at-most-once: it was stored as run)"
                if at_most_once
                else "; it stays due and is tried again (at-least-once)",
            )
            plugins.dispatch_failed(scheduler=scheduler, entry=entry, exc=exc)
            continue
        failing = 0
        published_at = time.time()
        tally.note_sent(Sent(name, due_at, published_at, getattr(result, "id", None), index))
        if observed:
            dispatched.append(Dispatched(entry, due_at, published_at, result))
    return _done(scheduler, observed, dispatched, tally.result(), stop)


def _done(
    scheduler: RedBeatScheduler,
    observed: bool,
    dispatched: list[Dispatched],
    done: Published,
    stop: BaseException | None,
) -> Published:
    if observed:
        scheduler.plugins.after_dispatch(scheduler=scheduler, dispatched=dispatched)
    if stop is not None:
        raise stop  # the stop that arrived mid-dispatch, now that no committed run is lost
    return done


def _why(exc: BaseException) -> str:
    """One line for the history: the error under Celery's ``SchedulingError`` wrapper
    ("Couldn't apply scheduled task x: ...") when there is one, with its type."""
    cause = exc.__cause__ or exc.__context__ or exc
    return f"{type(cause).__name__}: {cause}"


def _log_unsent(unsent: tuple[str, ...], at_most_once: bool, why: str) -> None:
    logger.warning(
        "beat: not publishing the tick's %d remaining runs (%s): %s",
        len(unsent),
        ", ".join(map(repr, unsent[:5])) + (", ..." if len(unsent) > 5 else ""),
        f"{why}; "
        + (
            "they were stored as run, so they are lost (at-most-once)"
            if at_most_once
            else "they stay due and are tried again (at-least-once)"
        ),
    )


def _keep_publishing(
    exc: BaseException,
    earlier: BaseException | None,
    where: str,
    remaining: int,
    at_most_once: bool,
) -> BaseException:
    """A stop arrived during dispatch: return it to raise after the remaining publishes when
    their runs are committed (at-most-once, first stop); raise it at once otherwise (a
    second stop, also when the first was held by :func:`~redbeat_core.stops.held_stops`)."""
    if not at_most_once or earlier is not None or stop_was_held():
        raise exc
    logger.warning(
        "beat: stopping %s; publishing the tick's %d remaining entries first, as their runs "
        "are committed (stop again to stop at once)",
        where,
        remaining,
    )
    return exc
