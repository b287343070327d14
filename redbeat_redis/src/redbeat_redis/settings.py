"""The settings of the Redis backends, declared by redbeat-redis (the Sentinel and Cluster
backends read the same ones).

celery-redbeat's names and meanings: ``redbeat_redis_url`` (another name for the core's
storage URL, ``redbeat_url``), ``redbeat_redis_options`` (keyword arguments for the client, plus
RedBeat's own keys such as ``retry_period``) and ``redbeat_redis_use_ssl``; and RedBeat's
``redbeat_replica_acks`` / ``redbeat_replica_ack_timeout``. They are read once with every other
setting (:mod:`redbeat_core.settings`); :class:`RedisSettings` is the checked view the backends
use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Self

import attrs

from redbeat_core.config import URL_SETTING, RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.masking import redacted_repr
from redbeat_core.settings import (
    InvalidValue,
    Setting,
    SettingRegistry,
    Settings,
    boolean,
    integer,
    seconds,
)
from redbeat_redis import tls

OWNER: Final = "redbeat-redis"
URL_ALIAS: Final = "redbeat_redis_url"
OPTIONS_SETTING: Final = "redbeat_redis_options"
USE_SSL_SETTING: Final = "redbeat_redis_use_ssl"
REPLICA_ACKS_SETTING: Final = "redbeat_replica_acks"
REPLICA_ACK_TIMEOUT_SETTING: Final = "redbeat_replica_ack_timeout"
LIVENESS_SETTING: Final = "redbeat_lock_liveness"

#: A healthy replica on the same LAN acknowledges in under a millisecond (WAIT asks it at once);
#: its first acknowledgement after a resync took 156 ms here. A replica that is gone costs each
#: busy tick this long, before its publishes.
DEFAULT_REPLICA_ACK_TIMEOUT: Final = 0.5

#: Keys of ``redbeat_redis_options`` that RedBeat consumes itself; the rest go to the client.
INTERNAL_OPTION_KEYS: Final = frozenset(
    {"retry_period", "cluster", "sentinels", "service_name", "sentinel_kwargs", "startup_nodes"}
)

_RETRY_PERIOD = seconds(allow_zero=True, forever=-1)


def _options(value: Any) -> dict[str, Any]:
    """A dict of client options, whose ``retry_period`` (when given) is a number of seconds.
    Celery's spellings of ``ssl_cert_reqs`` (``'CERT_NONE'``...) become :mod:`ssl` constants,
    here and in ``sentinel_kwargs``."""
    if not isinstance(value, Mapping):
        raise InvalidValue("a dict of options for the Redis client")
    options = tls.normalized(value)
    if isinstance(options.get("sentinel_kwargs"), Mapping):
        options["sentinel_kwargs"] = tls.normalized(options["sentinel_kwargs"])
    retry_period = options.get("retry_period")
    if retry_period is not None:
        try:
            _RETRY_PERIOD(retry_period)
        except InvalidValue as exc:
            raise InvalidValue(exc.accepted, key="retry_period", value=retry_period) from None
    return options


def _use_ssl(value: Any) -> bool | dict[str, Any]:
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return tls.normalized(value)  # 'CERT_NONE' as Celery spells it: ssl.CERT_NONE
    raise InvalidValue("True, False or a dict of ssl_* options such as {'ssl_cert_reqs': ...}")


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        URL_ALIAS,
        "str",
        doc="celery-redbeat's name for the storage URL (redbeat_url wins when both are set). "
        "URL forms: redis://[user:password@]host:port/db, rediss://... (TLS), "
        "unix:///path/to/socket?db=0",
        alias_of=URL_SETTING,
        attribute="redis_url",
        default_doc="broker_url (deprecated fallback, logged)",
    ),
    Setting(
        OPTIONS_SETTING,
        "dict",
        {},
        "Keyword arguments for the Redis client (password, username, credential_provider, "
        "socket_timeout, health_check_interval, ...), plus RedBeat's own retry_period. "
        "Forwarded to the client only when set explicitly, as in celery-redbeat 2.4.2.",
        parse=_options,
        default_doc="broker_transport_options (deprecated fallback, not forwarded)",
        fallback="broker_transport_options",
        fallback_warning=(
            "RedBeat falls back to broker_transport_options for its Redis options; this "
            "fallback will go away, set {names} explicitly"
        ),
        attribute="redbeat_redis_options",
        keys=(
            Setting(
                "retry_period",
                "float | None",
                None,
                "Seconds to retry a storage operation that failed on a connection error, with "
                "jittered exponential backoff capped at 30 s. None: no retry; -1: forever. While "
                "it retries, the tick waits; when it gives up, the beat logs the outage, keeps "
                "ticking and steps down once its lease has lapsed. Nothing raises out of the "
                "beat loop.",
            ),
        ),
    ),
    Setting(
        USE_SSL_SETTING,
        "bool | dict",
        None,
        "TLS options for rediss:// (ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile); "
        "certificates are verified by default. ssl_cert_reqs takes ssl constants or Celery's "
        "strings ('CERT_NONE', 'none', ...). Turning verification off, here, in the inherited "
        "broker_use_ssl, in redbeat_redis_options or in the URL (?ssl_cert_reqs=none), logs a "
        "warning at start-up naming where.",
        parse=_use_ssl,
        default_doc="broker_use_ssl",
        fallback="broker_use_ssl",
        attribute="redis_use_ssl",
    ),
    Setting(
        REPLICA_ACKS_SETTING,
        "int",
        0,
        "Replicas that must have a busy tick's commit before the tick goes on (Redis WAIT, sent "
        "in the commit's round trip). With at-most-once delivery its entries are published "
        "only then, so a failover cannot bring back a due time already published, as it can "
        "when the master dies before replicating the commit. 0 does not wait. Redis and "
        "Sentinel backends; refused on Redis Cluster.",
        parse=integer(minimum=0, meaning="0 = do not wait for replicas"),
    ),
    Setting(
        REPLICA_ACK_TIMEOUT_SETTING,
        "float (s)",
        DEFAULT_REPLICA_ACK_TIMEOUT,
        "The longest a busy tick waits for redbeat_replica_acks. When fewer replicas answer in "
        "time, the beat logs a warning (once, until they answer again) and goes on. "
        "Shorter than redbeat_lock_renew_interval and than the client's socket_timeout.",
        parse=seconds(),
    ),
    Setting(
        LIVENESS_SETTING,
        "bool",
        True,
        "Standbys take over from a leader whose process died as soon as the server sees its "
        "connection close (at their next poll, instead of when its lease lapses), and wake at "
        "once when a leader releases the lease. Each beat keeps one pub/sub connection for it. "
        "A frozen process, a lost host or a partition are still bounded by the lease; fencing "
        "is unchanged. False: the lease alone, as in celery-redbeat.",
        parse=boolean,
    ),
)


@attrs.frozen
class RedisSettings:
    """The Redis settings of one app, checked: what the Redis, Sentinel and Cluster backends
    build their client, retry policy and commits from."""

    #: ``redbeat_redis_options``, or the broker's transport options it falls back to
    #: (passwords and credential providers masked in the repr).
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=redacted_repr)
    #: True when ``redbeat_redis_options`` was set (not inherited from the broker's options);
    #: only then are its keys forwarded to the client, as celery-redbeat 2.4.2 does.
    options_explicit: bool = False
    use_ssl: bool | dict[str, Any] | None = attrs.field(default=None, repr=redacted_repr)
    #: The key ``use_ssl`` was read from: ``broker_use_ssl`` when it was inherited.
    use_ssl_source: str = USE_SSL_SETTING
    replica_acks: int = 0
    replica_ack_timeout: float = DEFAULT_REPLICA_ACK_TIMEOUT
    liveness: bool = True

    @classmethod
    def of(cls, config: RedBeatConfig) -> Self:
        """The Redis settings in ``config`` (defaults for those it does not hold)."""
        settings = config.settings
        return cls(
            options=dict(settings.get(OPTIONS_SETTING) or {}),
            options_explicit=settings.is_set(OPTIONS_SETTING),
            use_ssl=settings.get(USE_SSL_SETTING),
            use_ssl_source=settings.source(USE_SSL_SETTING),
            replica_acks=settings.get(REPLICA_ACKS_SETTING, 0),
            replica_ack_timeout=settings.get(
                REPLICA_ACK_TIMEOUT_SETTING, DEFAULT_REPLICA_ACK_TIMEOUT
            ),
            liveness=settings.get(LIVENESS_SETTING, True),
        )

    @property
    def retry_period(self) -> float | None:
        """Seconds to retry a failed storage operation; None = no retry, -1 = forever."""
        value = self.options.get("retry_period")
        return None if value is None else float(value)

    @property
    def client_options(self) -> dict[str, Any]:
        """``redbeat_redis_options`` minus RedBeat's own keys: what goes to the client (only
        when the setting was given explicitly)."""
        if not self.options_explicit:
            return {}
        return {k: v for k, v in self.options.items() if k not in INTERNAL_OPTION_KEYS}


def check_replica_ack_timing(config: RedBeatConfig) -> None:
    """A tick waiting for replicas must not outlive the lock: the ack timeout is shorter than
    the lock's renew interval, which the commit's lease extension has to outlast. Unused
    without acks, so a short lock is fine then."""
    redis = RedisSettings.of(config)
    renew = config.lock_renew_interval
    if redis.replica_acks and redis.replica_ack_timeout >= renew:
        raise ConfigurationError(
            REPLICA_ACK_TIMEOUT_SETTING,
            redis.replica_ack_timeout,
            f"a number of seconds shorter than redbeat_lock_renew_interval ({renew:g}s),"
            " or a tick waiting for replicas could outlive the lock",
        )


def register(registry: SettingRegistry) -> None:
    """Declare the Redis settings (the ``redbeat_register_settings`` hook of the plugin)."""
    registry.add(*SETTINGS, owner=OWNER)
    registry.check(check_replica_ack_timing, owner=OWNER)


def redis_config(
    url: str,
    *,
    options: Mapping[str, Any] | None = None,
    inherited: bool = False,
    use_ssl: bool | dict[str, Any] | None = None,
    replica_acks: int = 0,
    **fields: Any,
) -> RedBeatConfig:
    """A config for ``url`` with these Redis settings, built by hand rather than read from an
    app (tests, tools). ``inherited`` makes ``options`` count as the broker's (not forwarded to
    the client); ``fields`` are the core's (``key_prefix``, ``lock_key``, ...)."""
    values: dict[str, Any] = {
        OPTIONS_SETTING: dict(options or {}),
        USE_SSL_SETTING: use_ssl,
        REPLICA_ACKS_SETTING: replica_acks,
    }
    explicit = {REPLICA_ACKS_SETTING} if replica_acks else set()
    if options is not None and not inherited:
        explicit.add(OPTIONS_SETTING)
    settings = Settings(values=values, explicit=frozenset(explicit))
    fields.setdefault("url_setting", URL_ALIAS)  # errors name what a Redis user writes
    return RedBeatConfig(url=url, settings=settings, **fields)
