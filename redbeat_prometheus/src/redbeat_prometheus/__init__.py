"""Prometheus metrics for RedBeat: ticks, dispatches, lateness, lock state and entry counts.

Installed, the plugin loads through its ``redbeat`` entry point and collects metrics for every
scheduler, each in its own registry. It serves them over HTTP only when
``redbeat_prometheus_port`` is set.
"""

from redbeat_prometheus._exporter import Exporter, MetricsServer
from redbeat_prometheus._metrics import (
    LATENESS_BUCKETS,
    METRIC_NAMES,
    EntryGauges,
    SchedulerMetrics,
)
from redbeat_prometheus._settings import SETTINGS, PrometheusSettings
from redbeat_prometheus.plugin import exporter_for, registry_for

__all__ = [
    "LATENESS_BUCKETS",
    "METRIC_NAMES",
    "SETTINGS",
    "EntryGauges",
    "Exporter",
    "MetricsServer",
    "PrometheusSettings",
    "SchedulerMetrics",
    "exporter_for",
    "registry_for",
]
__version__ = "0.1.0"
