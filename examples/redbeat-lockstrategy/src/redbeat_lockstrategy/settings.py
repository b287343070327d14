"""The plugin's settings, read from the Celery app's configuration and checked at start-up.

``redbeat_lockstrategy_enabled`` switches the strategy on (installing the plugin alone changes
nothing: every beat sharing a schedule must lock the same way, and the Celery configuration is
what they share), ``redbeat_lockstrategy_namespace`` names the lease key (under the app's key
prefix) and ``redbeat_lockstrategy_ttl`` sets how long a lease lasts. Like RedBeat's own settings
they may be written in lower or upper case, and a bad value stops the beat with the setting's
name.
"""

from __future__ import annotations

import math
from typing import Any, Final, Self

import attrs

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError

ENABLED_SETTING: Final = "redbeat_lockstrategy_enabled"
NAMESPACE_SETTING: Final = "redbeat_lockstrategy_namespace"
TTL_SETTING: Final = "redbeat_lockstrategy_ttl"
DEFAULT_NAMESPACE: Final = "beat-leader"


def _read(conf: Any, name: str) -> Any:
    """A setting as the user wrote it (lower or upper case), or None when it is not set."""
    if conf is None:
        return None
    for key in (name, name.upper()):
        if key in conf:
            return conf[key]
    return None


def is_enabled(config: RedBeatConfig) -> bool:
    """Whether ``redbeat_lockstrategy_enabled`` is True for ``config.app``.

    :raises ConfigurationError: naming the setting, for a value that is not a bool.
    """
    value = _read(config.app.conf if config.app is not None else None, ENABLED_SETTING)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigurationError(ENABLED_SETTING, value, "True or False")
    return value


def lease_key(prefix: str, namespace: str) -> str:
    """``<prefix>:<namespace>``, e.g. ``redbeat::beat-leader``; a namespace that already starts
    with the prefix is used as it is.

    The extra colon keeps the lease out of the entries' keys (``<prefix><entry name>``), as
    RedBeat's own ``<prefix>:lock`` does, and a prefix with a Redis Cluster hash tag
    (``{redbeat}:``) puts the lease in the slot of the schedule, where the store's scripts can
    check it.
    """
    return namespace if namespace.startswith(prefix) else f"{prefix}:{namespace}"


@attrs.frozen
class LockStrategySettings:
    """Where the lease lives and how long it lasts, for one app."""

    namespace: str
    key: str
    ttl: float

    @classmethod
    def from_config(cls, config: RedBeatConfig) -> Self:
        """Read and check the settings of ``config.app``; defaults when there is no app.

        :raises ConfigurationError: naming the setting, for a namespace that is not a
            non-empty string or a TTL that is not a number of seconds longer than
            ``redbeat_lock_renew_interval`` (the leader renews its lease that often: a shorter
            lease would lapse between two renewals).
        """
        conf = config.app.conf if config.app is not None else None

        namespace = _read(conf, NAMESPACE_SETTING)
        if namespace is None:
            namespace = DEFAULT_NAMESPACE
        if not isinstance(namespace, str) or not namespace.strip():
            raise ConfigurationError(
                NAMESPACE_SETTING, namespace, f"a non-empty string such as {DEFAULT_NAMESPACE!r}"
            )

        ttl = _read(conf, TTL_SETTING)
        if ttl is None:
            ttl = config.lock_timeout
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
            raise ConfigurationError(TTL_SETTING, ttl, "a number of seconds")
        renew = config.lock_renew_interval
        if ttl <= renew:
            raise ConfigurationError(
                TTL_SETTING,
                ttl,
                f"must be longer than redbeat_lock_renew_interval ({renew:g}s): the leader "
                "renews its lease that often, so a shorter one lapses between renewals",
            )
        return cls(namespace=namespace, key=lease_key(config.key_prefix, namespace), ttl=float(ttl))
