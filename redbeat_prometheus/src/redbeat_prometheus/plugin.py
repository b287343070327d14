"""The metrics plugin's hook implementations: the ``prometheus`` entry point of group
``redbeat``.

This module is one plugin shared by every scheduler in the process (each app's plugin manager
registers the same module), so all state is kept per scheduler, in a weak mapping: a scheduler
that is garbage-collected takes its metrics with it, and its endpoint is closed.

Hot path: the hooks only touch memory; they never do I/O. The entry gauges are read from the
store when the metrics are scraped (at most once per ``redbeat_prometheus_refresh_interval``),
on the scraping thread. ``redbeat_before_dispatch`` is deliberately not implemented, so the
scheduler does not build its argument.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from redbeat_core import hookimpl
from redbeat_core.settings import SettingRegistry
from redbeat_core.typing import Fence
from redbeat_prometheus._exporter import Exporter
from redbeat_prometheus._settings import PrometheusSettings, register

if TYPE_CHECKING:
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.runs import Dispatched, Skipped
    from redbeat_core.scheduler import RedBeatScheduler

logger = logging.getLogger("celery.beat")

_exporters: weakref.WeakKeyDictionary[RedBeatScheduler, Exporter] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def exporter_for(scheduler: RedBeatScheduler) -> Exporter | None:
    """The plugin's state for a scheduler (metrics, registry, endpoint), or None when the
    plugin has not seen that scheduler yet."""
    return _exporters.get(scheduler)


def registry_for(scheduler: RedBeatScheduler) -> CollectorRegistry | None:
    """The :class:`~prometheus_client.CollectorRegistry` holding a scheduler's metrics."""
    exporter = _exporters.get(scheduler)
    return exporter.registry if exporter is not None else None


def _exporter(scheduler: RedBeatScheduler) -> Exporter:
    exporter = _exporters.get(scheduler)
    if exporter is None:
        with _guard:
            exporter = _exporters.get(scheduler)
            if exporter is None:
                exporter = Exporter(PrometheusSettings.of(scheduler.config), scheduler.store)
                _exporters[scheduler] = exporter
                # A scheduler dropped without close() must not leave its port open.
                weakref.finalize(scheduler, exporter.stop_server)
    return exporter


# ------------------------------------------------------------------------- settings


@hookimpl
def redbeat_register_settings(registry: SettingRegistry) -> None:
    register(registry)


# ------------------------------------------------------------------------- lifecycle


@hookimpl
def redbeat_scheduler_started(scheduler: RedBeatScheduler) -> None:
    _exporter(scheduler).start_server()


@hookimpl
def redbeat_scheduler_stopped(scheduler: RedBeatScheduler) -> None:
    exporter = _exporters.get(scheduler)
    if exporter is not None:
        exporter.stop_server()


@hookimpl
def redbeat_tick(scheduler: RedBeatScheduler, leader: bool) -> None:
    _exporter(scheduler).metrics.record_tick(leader=leader)


# ------------------------------------------------------------------------- dispatch


@hookimpl
def redbeat_after_dispatch(scheduler: RedBeatScheduler, dispatched: Sequence[Dispatched]) -> None:
    _exporter(scheduler).metrics.record_dispatched(dispatched)


@hookimpl
def redbeat_runs_skipped(scheduler: RedBeatScheduler, skipped: Sequence[Skipped]) -> None:
    _exporter(scheduler).metrics.record_skipped(skipped)


@hookimpl
def redbeat_dispatch_failed(scheduler: RedBeatScheduler, entry: RedBeatSchedulerEntry) -> None:
    _exporter(scheduler).metrics.record_failure(entry.task)


@hookimpl
def redbeat_entry_quarantined(scheduler: RedBeatScheduler) -> None:
    # The next scrape reads the counts again, whatever the refresh interval says.
    _exporter(scheduler).metrics.entries.request_refresh()


# ------------------------------------------------------------------------- lock


@hookimpl
def redbeat_lock_acquired(scheduler: RedBeatScheduler, fence: Fence | None) -> None:
    _exporter(scheduler).metrics.record_lock_acquired(None if fence is None else fence.epoch)


@hookimpl
def redbeat_lock_lost(scheduler: RedBeatScheduler) -> None:
    _exporter(scheduler).metrics.record_lock_lost()
