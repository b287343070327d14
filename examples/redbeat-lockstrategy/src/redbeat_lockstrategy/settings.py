"""The plugin's settings, declared to RedBeat (hook ``redbeat_register_settings``) and read from
the checked values RedBeat hands every plugin.

``redbeat_lockstrategy_enabled`` switches the strategy on (installing the plugin alone changes
nothing: every beat sharing a schedule must lock the same way, and the Celery configuration is
what they share), ``redbeat_lockstrategy_namespace`` names the lease key (under the app's key
prefix) and ``redbeat_lockstrategy_ttl`` sets how long a lease lasts. Like RedBeat's own settings
they may be written in lower or upper case, and a bad value stops the beat with the setting's
name and this plugin's.
"""

from __future__ import annotations

import math
from typing import Any, Final, Self

import attrs

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.settings import InvalidValue, Setting, SettingRegistry, boolean

OWNER: Final = "redbeat-lockstrategy"
ENABLED_SETTING: Final = "redbeat_lockstrategy_enabled"
NAMESPACE_SETTING: Final = "redbeat_lockstrategy_namespace"
TTL_SETTING: Final = "redbeat_lockstrategy_ttl"
DEFAULT_NAMESPACE: Final = "beat-leader"


def _namespace(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"a non-empty string such as {DEFAULT_NAMESPACE!r}")
    return value


def _ttl(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValue("a number of seconds")
    return float(value)


SETTINGS: Final = (
    Setting(
        ENABLED_SETTING,
        "bool",
        False,
        "Use the lease under redbeat_lockstrategy_namespace as the beat lock.",
        parse=boolean,
    ),
    Setting(
        NAMESPACE_SETTING,
        "str",
        DEFAULT_NAMESPACE,
        "Name of the lease key, under the key prefix: <prefix>:<namespace>.",
        parse=_namespace,
    ),
    Setting(
        TTL_SETTING,
        "float (s)",
        None,
        "How long a lease lasts; longer than redbeat_lock_renew_interval.",
        parse=_ttl,
        default_doc="redbeat_lock_timeout",
    ),
)


def is_enabled(config: RedBeatConfig) -> bool:
    """Whether ``redbeat_lockstrategy_enabled`` is True for the app of ``config``."""
    return bool(config.settings.get(ENABLED_SETTING, False))


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
        """The checked settings in ``config`` (defaults for those it does not hold)."""
        namespace = config.settings.get(NAMESPACE_SETTING) or DEFAULT_NAMESPACE
        ttl = config.settings.get(TTL_SETTING)
        return cls(
            namespace=namespace,
            key=lease_key(config.key_prefix, namespace),
            ttl=float(ttl if ttl is not None else config.lock_timeout),
        )


def check_ttl(config: RedBeatConfig) -> None:
    """The lease must outlast the renew interval: the leader renews it that often, so a
    shorter one lapses between renewals (checked once the whole config is known)."""
    ttl = LockStrategySettings.from_config(config).ttl
    renew = config.lock_renew_interval
    if ttl <= renew:
        raise ConfigurationError(
            TTL_SETTING,
            ttl,
            f"must be longer than redbeat_lock_renew_interval ({renew:g}s): the leader "
            "renews its lease that often, so a shorter one lapses between renewals",
        )


def register(registry: SettingRegistry) -> None:
    """Declare the settings and their check (the plugin's ``redbeat_register_settings``)."""
    registry.add(*SETTINGS, owner=OWNER)
    registry.check(check_ttl, owner=OWNER)
