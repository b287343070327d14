"""The plugin's settings, read from the Celery app's configuration by the plugin itself.

Like RedBeat's own settings they are accepted in lower case (``redbeat_prometheus_port``) and
upper case (``REDBEAT_PROMETHEUS_PORT``), and checked once, when a scheduler starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from redbeat_core.config import Setting
from redbeat_core.exceptions import ConfigurationError

DEFAULT_ADDR: Final = "127.0.0.1"
#: Least seconds between two reads of the entry counts (two storage round trips, at scrape time).
DEFAULT_REFRESH_INTERVAL: Final = 15.0

SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "redbeat_prometheus_port",
        "int | None",
        "None (unset)",
        "TCP port of the /metrics endpoint. Unset: metrics are collected but nothing is "
        "served, so installing the plugin never opens a port. 0: a free port, logged at start.",
    ),
    Setting(
        "redbeat_prometheus_addr",
        "str",
        repr(DEFAULT_ADDR),
        "Address the endpoint listens on; '0.0.0.0' (or '::') to reach it from other hosts.",
    ),
    Setting(
        "redbeat_prometheus_refresh_interval",
        "float (s)",
        f"{DEFAULT_REFRESH_INTERVAL:g}",
        "Least time between two reads of the entry gauges (scheduled and quarantined counts, "
        "two storage round trips), which are read at scrape time, never on the beat's thread. "
        "0 reads them at every scrape.",
    ),
)


def _get(conf: Any, name: str) -> Any:
    value = conf.get(name)
    return conf.get(name.upper()) if value is None else value


def _port(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigurationError(
            "redbeat_prometheus_port",
            value,
            "a TCP port from 0 to 65535 (0 picks a free one), or unset to serve nothing",
        )
    return value


def _addr(value: Any) -> str:
    if value is None:
        return DEFAULT_ADDR
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            "redbeat_prometheus_addr", value, "a host or IP address such as '127.0.0.1'"
        )
    return value.strip()


def _interval(value: Any) -> float:
    if value is None:
        return DEFAULT_REFRESH_INTERVAL
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or math.isnan(number)
        or number < 0
    ):
        raise ConfigurationError(
            "redbeat_prometheus_refresh_interval", value, "a number of seconds >= 0"
        )
    return float(number)


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """The plugin's settings for one Celery app, checked. Build it with :meth:`from_conf`."""

    port: int | None = None
    addr: str = DEFAULT_ADDR
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL

    @property
    def serve(self) -> bool:
        """Whether to open the HTTP endpoint (only when a port is set)."""
        return self.port is not None

    @classmethod
    def from_conf(cls, conf: Any) -> PrometheusSettings:
        """Read and check the settings from a Celery app's ``conf``.

        :raises ConfigurationError: naming the setting, the value and what is accepted.
        """
        return cls(
            port=_port(_get(conf, "redbeat_prometheus_port")),
            addr=_addr(_get(conf, "redbeat_prometheus_addr")),
            refresh_interval=_interval(_get(conf, "redbeat_prometheus_refresh_interval")),
        )
