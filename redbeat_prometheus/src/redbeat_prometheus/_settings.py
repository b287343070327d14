"""The plugin's settings, declared through ``redbeat_register_settings`` like RedBeat's own.

RedBeat reads them with every other setting, in lower case (``redbeat_prometheus_port``) or
upper case (``REDBEAT_PROMETHEUS_PORT``), and checks them when the app's runtime is built: a bad
value stops start-up with the setting's name and this plugin's. The plugin reads the checked
values from ``scheduler.config.settings``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from redbeat_core.config import RedBeatConfig
from redbeat_core.settings import InvalidValue, Setting, SettingRegistry

OWNER: Final = "redbeat-prometheus"
PORT_SETTING: Final = "redbeat_prometheus_port"
ADDR_SETTING: Final = "redbeat_prometheus_addr"
REFRESH_SETTING: Final = "redbeat_prometheus_refresh_interval"
DEFAULT_ADDR: Final = "127.0.0.1"
#: Least seconds between two reads of the entry counts (two storage round trips, at scrape time).
DEFAULT_REFRESH_INTERVAL: Final = 15.0


def _port(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise InvalidValue(
            "a TCP port from 0 to 65535 (0 picks a free one), or unset to serve nothing"
        )
    return value


def _addr(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue("a host or IP address such as '127.0.0.1'")
    return value.strip()


def _interval(value: Any) -> float:
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
        raise InvalidValue("a number of seconds >= 0")
    return float(number)


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        PORT_SETTING,
        "int | None",
        None,
        "TCP port of the /metrics endpoint. Unset: metrics are collected but nothing is "
        "served, so installing the plugin never opens a port. 0: a free port, logged at start.",
        parse=_port,
        default_doc="None (unset)",
    ),
    Setting(
        ADDR_SETTING,
        "str",
        DEFAULT_ADDR,
        "Address the endpoint listens on; '0.0.0.0' (or '::') to reach it from other hosts.",
        parse=_addr,
    ),
    Setting(
        REFRESH_SETTING,
        "float (s)",
        DEFAULT_REFRESH_INTERVAL,
        "Least time between two reads of the entry gauges (scheduled and quarantined counts, "
        "two storage round trips), which are read at scrape time, never on the beat's thread. "
        "0 reads them at every scrape.",
        parse=_interval,
    ),
)


def register(registry: SettingRegistry) -> None:
    """Declare the plugin's settings (its ``redbeat_register_settings`` hook)."""
    registry.add(*SETTINGS, owner=OWNER)


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """The plugin's settings for one Celery app, checked."""

    port: int | None = None
    addr: str = DEFAULT_ADDR
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL

    @property
    def serve(self) -> bool:
        """Whether to open the HTTP endpoint (only when a port is set)."""
        return self.port is not None

    @classmethod
    def of(cls, config: RedBeatConfig) -> PrometheusSettings:
        """The settings in a scheduler's config (read and checked at start-up)."""
        values = config.settings
        return cls(
            port=values.get(PORT_SETTING),
            addr=values.get(ADDR_SETTING, DEFAULT_ADDR),
            refresh_interval=values.get(REFRESH_SETTING, DEFAULT_REFRESH_INTERVAL),
        )

    @classmethod
    def from_conf(cls, conf: Any) -> PrometheusSettings:
        """Read and check the settings from a Celery configuration (or any mapping) alone.

        :raises ConfigurationError: naming the setting, the value and what is accepted.
        """
        registry = SettingRegistry()
        register(registry)
        values = registry.read(conf)
        return cls(
            port=values[PORT_SETTING],
            addr=values[ADDR_SETTING],
            refresh_interval=values[REFRESH_SETTING],
        )
