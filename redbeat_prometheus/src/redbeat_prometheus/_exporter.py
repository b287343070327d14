"""Per-scheduler state: the metrics and the HTTP endpoint that serves them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from redbeat_prometheus._metrics import EntryGauges, SchedulerMetrics
from redbeat_prometheus._settings import PrometheusSettings

logger = logging.getLogger("celery.beat")

#: How long ``close()`` waits for the server thread after asking it to stop.
SERVER_JOIN_TIMEOUT = 5.0


class MetricsServer:
    """prometheus_client's WSGI server on its daemon thread, with a way to stop it."""

    def __init__(self, port: int, addr: str, metrics: SchedulerMetrics) -> None:
        self._httpd, self._thread = start_http_server(port, addr=addr, registry=metrics.registry)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port actually bound (the free port picked for port 0)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop serving and release the port (``shutdown`` alone keeps the socket open)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(SERVER_JOIN_TIMEOUT)


class Exporter:
    """Everything the plugin keeps for one scheduler: its metrics and its endpoint.

    :param settings: the plugin's settings (invalid ones are replaced by the defaults, which
        serve nothing: metrics are still collected).
    :param store: the scheduler's :class:`~redbeat_core.typing.ScheduleStore`, read by the
        entry gauges when the registry is collected.
    :param clock: monotonic clock for the entry gauges' refresh interval (tests inject one).
    """

    def __init__(
        self,
        settings: PrometheusSettings,
        store: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        entries = EntryGauges(settings.refresh_interval, clock=clock)
        entries.store = store
        self.metrics = SchedulerMetrics(entries=entries)
        self.server: MetricsServer | None = None

    @property
    def registry(self) -> CollectorRegistry:
        """The scheduler's :class:`prometheus_client.CollectorRegistry`."""
        return self.metrics.registry

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the endpoint listens, or None when it is not serving."""
        return self.server.address if self.server is not None else None

    def start_server(self) -> None:
        """Open the endpoint when a port is set; a failure to bind is logged, never raised:
        the beat goes on and metrics are still collected."""
        settings = self.settings
        if settings.port is None or self.server is not None:
            return
        try:
            self.server = MetricsServer(settings.port, settings.addr, self.metrics)
        except OSError as exc:
            logger.error(
                "redbeat-prometheus: cannot serve metrics on %s:%s: %s. Choose a free port with "
                "redbeat_prometheus_port (0 picks one); the beat runs on without the endpoint.",
                settings.addr,
                settings.port,
                exc,
            )
            return
        logger.info("redbeat-prometheus: serving metrics on %s", self.server.url)

    def stop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
            logger.info("redbeat-prometheus: stopped serving metrics on %s", server.url)
