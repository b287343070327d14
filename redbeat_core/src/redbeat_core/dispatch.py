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

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from redbeat_core.config import DEFAULT_PUBLISH_BATCH, PUBLISH_BATCH_SETTING
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
    unsent: list[str] = attrs.Factory(list)
    unsent_at: list[int] = attrs.Factory(list)
    late: int = 0

    def note_sent(self, sent: Sent) -> None:
        if sent.published_at - sent.due_at > LATE_AFTER:
            self.late += 1
        self.sent.append(sent)

    def note_failed(self, name: str, index: int, exc: BaseException) -> None:
        self.failed.append(name)
        self.failed_at.append(index)
        self.reasons[index] = _why(exc)

    def note_unsent(self, name: str, index: int, why: str) -> None:
        self.unsent.append(name)
        self.unsent_at.append(index)
        self.reasons[index] = why

    def result(self) -> Published:
        unsent, unsent_at = tuple(self.unsent), tuple(self.unsent_at)
        return Published(
            tuple(self.failed),
            unsent,
            self.late,
            tuple(self.sent),
            self.reasons,
            tuple(self.failed_at),
            unsent_at,
        )


@attrs.define
class _Held:
    """A run ``apply_async`` handed to a transport batch, not yet flushed."""

    index: int
    name: str
    entry: RedBeatSchedulerEntry
    due_at: float
    result: Any


#: Runs in the first flush of a tick's publishes; the next flushes hold
#: ``redbeat_publish_batch``. A full first batch held the first run of a burst back by the
#: publishing of a hundred (15 to 30 ms). One small flush costs one round trip more per tick;
#: flushes growing by doubling cost several, which put the last run of a second later (B4).
FIRST_FLUSH = 8


class _Batch:
    """The tick's runs grouped into transport batches (kombu's ``Producer.batch``), flushed
    after the first :data:`FIRST_FLUSH` runs, then every ``size`` runs, before each wait for a
    due time and at the end. Each flush is a batch context of its own: a failed flush leaves
    kombu's batch unusable, and the next runs start a new one."""

    def __init__(self, producer: Any, size: int) -> None:
        self.producer = producer
        self.size = size
        self.limit = min(FIRST_FLUSH, size)
        self.held: list[_Held] = []
        self._context: Any = None

    @classmethod
    def for_producer(cls, producer: Any, size: int) -> _Batch | None:
        """A batch for ``producer``, or None when runs are published one by one (a size of
        1, or a transport that cannot batch: kombu would publish at once anyway)."""
        if size <= 1 or not getattr(producer, "supports_batch_publish", False):
            return None
        return cls(producer, size)

    def open(self) -> None:
        if self._context is None:
            # kombu flushes by itself at max_size transport operations; ours flushes by runs
            # first, so each flush's runs are known (a message is a few operations).
            self._context = self.producer.batch(max_size=self.size * 8)
            self._context.__enter__()

    @property
    def full(self) -> bool:
        return len(self.held) >= self.limit

    def flush(self) -> tuple[list[_Held], BaseException | None]:
        """Send what is held: the runs, and the error when the flush failed (every run it
        held then failed: kombu cannot say which reached the broker)."""
        if self.held:
            self.limit = self.size
        held, self.held = self.held, []
        context, self._context = self._context, None
        if context is None:
            return held, None
        try:
            context.__exit__(None, None, None)
        except Exception as exc:
            return held, exc
        return held, None

    def discard(self) -> list[_Held]:
        """Drop what is held, unsent (the lease may have lapsed: nothing more goes out)."""
        held, self.held = self.held, []
        context, self._context = self._context, None
        if context is not None:
            error = RuntimeError("runs discarded")
            with contextlib.suppress(Exception):
                context.__exit__(RuntimeError, error, None)
        return held


def publish(
    scheduler: RedBeatScheduler,
    due: Sequence[tuple[str, RedBeatSchedulerEntry, float]],
    *,
    at_most_once: bool,
    lease_ok: Callable[[], bool],
) -> Published:
    """``apply_async`` for each ``(name, entry, due time)``, each at its due time, in transport
    batches when the broker can (``redbeat_publish_batch``); reports every publish to
    ``redbeat_after_dispatch`` (one call) and every failure to ``redbeat_dispatch_failed``.
    Raises the stop that arrived meanwhile, once it may."""
    return _Dispatch(scheduler, due, at_most_once, lease_ok).run()


class _Dispatch:
    """One tick's publishes (see :func:`publish`)."""

    def __init__(
        self,
        scheduler: RedBeatScheduler,
        due: Sequence[tuple[str, RedBeatSchedulerEntry, float]],
        at_most_once: bool,
        lease_ok: Callable[[], bool],
    ) -> None:
        self.scheduler = scheduler
        self.due = due
        self.at_most_once = at_most_once
        self.lease_ok = lease_ok
        self.plugins = scheduler.plugins
        self.observed = bool(self.plugins.after_dispatch)
        self.dispatched: list[Dispatched] = []
        self.tally = _Tally()
        self.producer = scheduler.producer
        settings = scheduler.config.settings
        size = int(settings.get(PUBLISH_BATCH_SETTING, DEFAULT_PUBLISH_BATCH))
        self.batch = _Batch.for_producer(self.producer, size)
        self.stop: BaseException | None = None
        self.failing = 0

    def run(self) -> Published:
        due = self.due
        for index, (name, entry, due_at) in enumerate(due):
            self._wait(index, due_at)
            why = self._why_not()
            if why is not None:
                self.flush()  # held while the lease was fine (the flush checks it again)
                unsent = tuple(n for n, _, _ in due[index:])
                _log_unsent(unsent, self.at_most_once, why)
                for place in range(index, len(due)):
                    self.tally.note_unsent(due[place][0], place, why)
                break
            self._send(index, name, entry, due_at)
        else:
            self.flush()
        return _done(self.scheduler, self.observed, self.dispatched, self.tally.result(), self.stop)

    def _wait(self, index: int, due_at: float) -> None:
        """Prepared ahead (prepare_ahead): never published before its due time. A loop, as
        sleep keeps the monotonic clock and the due time is on the wall clock. What a batch
        holds goes out first, not after the wait."""
        try:
            if self.batch is not None and due_at > time.time():
                self.flush()
            while self.stop is None and (early := due_at - time.time()) > 0:
                time.sleep(early)
        except (SystemExit, KeyboardInterrupt) as exc:
            where = f"{due_at - time.time():.3f}s before a due time"
            left = len(self.due) - index
            self.stop = _keep_publishing(exc, self.stop, where, left, self.at_most_once)

    def _why_not(self) -> str | None:
        """Why the tick's remaining runs must not be published, or None."""
        if not self.lease_ok():
            return "the lease may have lapsed while this beat waited"
        if not self.at_most_once and self.failing >= BROKER_DOWN_AFTER:
            return f"{self.failing} publishes failed in a row"
        return None

    def _send(self, index: int, name: str, entry: RedBeatSchedulerEntry, due_at: float) -> None:
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            if self.batch is not None:
                self.batch.open()
            result = self.scheduler.apply_async(entry, producer=self.producer, advance=False)
        except (SystemExit, KeyboardInterrupt) as exc:
            where = f"while publishing {entry.name!r} (it may not have been sent)"
            left = len(self.due) - index - 1
            self.stop = _keep_publishing(exc, self.stop, where, left, self.at_most_once)
            return
        except Exception as exc:
            self.failing += 1
            self.tally.note_failed(name, index, exc)
            logger.exception(
                "beat: cannot publish %r: %s%s",
                entry.name,
                exc,
                _fate(self.at_most_once, 1),
            )
            self.plugins.dispatch_failed(scheduler=self.scheduler, entry=entry, exc=exc)
            return
        if self.batch is not None:
            self.batch.held.append(_Held(index, name, entry, due_at, result))
            if self.batch.full:
                self.flush()
            return
        self.failing = 0
        self._sent(index, name, entry, due_at, result, time.time())

    def _sent(
        self,
        index: int,
        name: str,
        entry: RedBeatSchedulerEntry,
        due_at: float,
        result: Any,
        at: float,
    ) -> None:
        self.tally.note_sent(Sent(name, due_at, at, getattr(result, "id", None), index))
        if self.observed:
            self.dispatched.append(Dispatched(entry, due_at, at, result))

    def flush(self) -> None:
        """Send what the batch holds: when the lease may have lapsed meanwhile, nothing (the
        runs are unsent); a failed flush fails every run it held (kombu cannot say which
        reached the broker) and counts as the broker being down."""
        batch = self.batch
        if batch is None or not batch.held:
            return
        if not self.lease_ok():
            why = "the lease may have lapsed before the batch was sent"
            held = batch.discard()
            _log_unsent(tuple(run.name for run in held), self.at_most_once, why)
            for run in held:
                self.tally.note_unsent(run.name, run.index, why)
            return
        held, error = batch.flush()
        now = time.time()
        if error is None:
            self.failing = 0
            for run in held:
                self._sent(run.index, run.name, run.entry, run.due_at, run.result, now)
            return
        self.failing = BROKER_DOWN_AFTER
        logger.error(
            "beat: cannot publish a batch of %d runs (%s): %s%s",
            len(held),
            ", ".join(repr(run.entry.name) for run in held[:5]),
            error,
            _fate(self.at_most_once, len(held)),
        )
        for run in held:
            self.tally.note_failed(run.name, run.index, error)
            self.plugins.dispatch_failed(scheduler=self.scheduler, entry=run.entry, exc=error)


#: What becomes of runs that were not published, by delivery mode and number.
_FATE: Final = {
    (True, 1): "; its run is lost (at-most-once: it was stored as run)",
    (True, 2): "; they are lost (at-most-once: they were stored as run)",
    (False, 1): "; it stays due and is tried again (at-least-once)",
    (False, 2): "; they stay due and are tried again (at-least-once)",
}


def _fate(at_most_once: bool, runs: int) -> str:
    return _FATE[at_most_once, min(runs, 2)]


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
