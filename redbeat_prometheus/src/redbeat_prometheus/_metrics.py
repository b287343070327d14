"""The metrics of one scheduler, in a registry of their own.

Never the process-wide default registry: several schedulers (and Celery apps) can live in one
process, and each must report only its own numbers.

Everything the hooks record is in memory. The entry gauges need the store, so they are read when
the registry is collected (a scrape), at most once per refresh interval, on the scraping thread:
the beat's own thread never does I/O for metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from redbeat_prometheus._settings import DEFAULT_REFRESH_INTERVAL

if TYPE_CHECKING:
    from redbeat_core.runs import Decision

logger = logging.getLogger("celery.beat")

#: Lateness buckets (seconds): 1 ms to 60 s. A healthy beat publishes within milliseconds of the
#: due time; seconds mean a slow store or broker, a minute means a failover or a stalled beat.
LATENESS_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

#: Every metric family, as Prometheus shows it (counters with their ``_total`` suffix).
METRIC_NAMES: Final = (
    "redbeat_ticks_total",
    "redbeat_dispatches_total",
    "redbeat_dispatch_failures_total",
    "redbeat_skipped_runs_total",
    "redbeat_dispatch_lateness_seconds",
    "redbeat_lock_held",
    "redbeat_lock_epoch",
    "redbeat_entries_scheduled",
    "redbeat_entries_quarantined",
    "redbeat_entries_refreshed_timestamp_seconds",
)


_ENTRY_FAMILIES: Final = (
    (
        "redbeat_entries_scheduled",
        "Entries in the schedule (stored and enabled), as of the last refresh.",
    ),
    (
        "redbeat_entries_quarantined",
        "Entries quarantined (undecodable or unrunnable), as of the last refresh.",
    ),
    (
        "redbeat_entries_refreshed_timestamp_seconds",
        "Unix time of the last successful read of the entry gauges.",
    ),
)


class EntryGauges(Collector):
    """The entry gauges, read from the store when the registry is collected.

    A read is two storage round trips (``count()`` and ``quarantined()``). Collections within
    ``interval`` seconds of the last read get the cached values, unless :meth:`request_refresh`
    was called (an entry was quarantined). Only one read runs at a time: a collection that finds
    one in flight (a slow or retrying store) gets the cached values instead of queueing up.
    Before the first successful read the families have no samples.

    :param interval: least seconds between two reads.
    :param clock: monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        interval: float = DEFAULT_REFRESH_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        #: The :class:`~redbeat_core.typing.ScheduleStore` to read; nothing is read while None.
        self.store: Any = None
        self._clock = clock
        self._next_read: float | None = None  # None: read at the next collection
        self._values: tuple[float, float, float] | None = None
        self._reading = threading.Lock()
        self._failing = False

    def request_refresh(self) -> None:
        """Read the store at the next collection, whatever the interval says."""
        self._next_read = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registering must not read the store: describe without values.
        for name, documentation in _ENTRY_FAMILIES:
            yield GaugeMetricFamily(name, documentation)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.maybe_read()
        values = self._values
        if values is None:
            yield from self.describe()
            return
        for (name, documentation), value in zip(_ENTRY_FAMILIES, values, strict=True):
            yield GaugeMetricFamily(name, documentation, value=value)

    def maybe_read(self) -> None:
        """Read the store if the interval has passed (or a read was requested)."""
        store = self.store
        if store is None:
            return
        now = self._clock()
        if self._next_read is not None and now < self._next_read:
            return
        if not self._reading.acquire(blocking=False):
            return
        try:
            self._next_read = now + self.interval
            try:
                scheduled = store.count()
                quarantined = len(store.quarantined())
            except Exception as exc:
                if not self._failing:
                    self._failing = True
                    logger.warning(
                        "redbeat-prometheus: cannot read the entry counts: %s; the entry "
                        "gauges keep their last values",
                        exc,
                    )
                return
            self._failing = False
            self._values = (float(scheduled), float(quarantined), time.time())
        finally:
            self._reading.release()


def skip_kind(decision: Decision) -> str:
    """A skip's kind for a label: ``postponed``, or the reason's first word when it names one
    (``misfire: 9000s late`` -> ``misfire``), else ``skip``. Bounded: reasons are free text."""
    if decision.action == "postpone":
        return "postponed"
    head, colon, _ = decision.reason.partition(":")
    if colon and head.isidentifier() and len(head) <= MAX_KIND:
        return head
    return "skip"


#: The longest reason word used as a label value (longer ones are counted as ``skip``).
MAX_KIND = 24


class SchedulerMetrics:
    """One scheduler's metrics and the registry that holds them.

    The ``record_*`` methods are what the hooks call; they only touch memory. Label children
    are cached per task, so a dispatch costs a dict look-up, an increment and an observation.
    The entry gauges are :attr:`entries`, read from the store at collection time.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        entries: EntryGauges | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ticks = Counter(
            "redbeat_ticks",
            "Ticks finished, by whether this beat held the lock (a standby's tick only polls).",
            ["leader"],
            registry=r,
        )
        self.dispatches = Counter(
            "redbeat_dispatches", "Scheduled tasks published, by task name.", ["task"], registry=r
        )
        self.dispatch_failures = Counter(
            "redbeat_dispatch_failures",
            "Scheduled tasks whose publish raised, by task name.",
            ["task"],
            registry=r,
        )
        self.skipped = Counter(
            "redbeat_skipped_runs",
            "Due runs not published because a scheduling policy or a plugin skipped or "
            "postponed them, by kind (the reason's first word: misfire, deadline, ...; "
            "'postponed' for a postponement) and deciding plugin.",
            ["kind", "plugin"],
            registry=r,
        )
        self.lateness = Histogram(
            "redbeat_dispatch_lateness_seconds",
            "Publish time minus due time of each published task, in seconds.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.lock_held = Gauge(
            "redbeat_lock_held", "1 while this beat holds the lock, else 0.", registry=r
        )
        self.lock_epoch = Gauge(
            "redbeat_lock_epoch",
            "Fencing epoch of the lock this beat last acquired (0 before it ever led).",
            registry=r,
        )
        self.entries = entries if entries is not None else EntryGauges()
        r.register(self.entries)
        self._ticks_by_role = {True: self.ticks.labels("true"), False: self.ticks.labels("false")}
        self._dispatches_by_task: dict[str, Any] = {}
        self._failures_by_task: dict[str, Any] = {}

    # ----------------------------------------------------------------- recording

    def _children(self, task: str) -> Any:
        """The dispatch counter child of a task, creating its failure child at the same time
        so both series exist (at 0) from the task's first dispatch."""
        child = self._dispatches_by_task.get(task)
        if child is None:
            child = self._dispatches_by_task[task] = self.dispatches.labels(task)
            self._failures_by_task.setdefault(task, self.dispatch_failures.labels(task))
        return child

    def record_tick(self, *, leader: bool) -> None:
        self._ticks_by_role[leader].inc()
        self.lock_held.set(1 if leader else 0)

    def record_dispatched(self, dispatched: Iterable[Any]) -> None:
        """One pass over a tick's :class:`~redbeat_core.scheduler.Dispatched` records."""
        by_task = self._dispatches_by_task
        observe = self.lateness.observe
        for record in dispatched:
            task = record.entry.task
            child = by_task.get(task)
            if child is None:
                child = self._children(task)
            child.inc()
            late = record.published_at - record.due_at
            observe(late if late > 0 else 0.0)

    def record_skipped(self, skipped: Iterable[Any]) -> None:
        """One pass over a tick's :class:`~redbeat_core.runs.Skipped` records."""
        for record in skipped:
            decision = record.decision
            self.skipped.labels(skip_kind(decision), decision.plugin or "?").inc()

    def record_failure(self, task: str) -> None:
        self._children(task)
        self._failures_by_task[task].inc()

    def record_lock_acquired(self, epoch: int | None) -> None:
        self.lock_held.set(1)
        if epoch is not None:
            self.lock_epoch.set(epoch)

    def record_lock_lost(self) -> None:
        self.lock_held.set(0)
