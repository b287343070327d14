"""RedBeat's settings, read once from a Celery app's configuration.

Every celery-redbeat 2.4 setting keeps its name, default and meaning, in lower case
(``redbeat_redis_url``) and upper case (``REDBEAT_REDIS_URL``). New settings use the same
``redbeat_`` prefix. Values are checked here, at start-up, so that a bad one fails with the
setting's name and what is accepted instead of surfacing mid-loop.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

from redbeat_core.exceptions import ConfigurationError

logger = logging.getLogger("celery.beat")

DEFAULT_KEY_PREFIX: Final = "redbeat:"
DEFAULT_MAX_INTERVAL: Final = 300.0
#: celery-redbeat holds its lock for 5 x beat_max_loop_interval (25 minutes): a dead beat then
#: stops all scheduling for that long. We default to a short lease renewed every third of it.
DEFAULT_LOCK_TIMEOUT: Final = 10.0
DEFAULT_LOCK_POLL_INTERVAL: Final = 1.0
DEFAULT_BATCH_SIZE: Final = 1000
#: Seconds ahead of a due time that the leader prepares what is due then. Preparing 50 entries
#: (decode, next run, commit) takes a few ms; this covers a few hundred.
DEFAULT_PREPARE_AHEAD: Final = 0.05
MAX_PREPARE_AHEAD: Final = 1.0
#: A healthy replica on the same LAN acknowledges in under a millisecond (WAIT asks it at once);
#: its first acknowledgement after a resync took 156 ms here. A replica that is gone costs each
#: busy tick this long, before its publishes.
DEFAULT_REPLICA_ACK_TIMEOUT: Final = 0.5

Delivery = Literal["at-most-once", "at-least-once"]
DELIVERY_MODES: Final[tuple[Delivery, ...]] = ("at-most-once", "at-least-once")
UnknownTask = Literal["send", "quarantine"]
UNKNOWN_TASK_MODES: Final[tuple[UnknownTask, ...]] = ("send", "quarantine")

#: Keys of ``redbeat_redis_options`` that RedBeat consumes itself; the rest go to the client.
INTERNAL_OPTION_KEYS: Final = frozenset(
    {"retry_period", "cluster", "sentinels", "service_name", "sentinel_kwargs", "startup_nodes"}
)


@attrs.frozen
class Setting:
    """One documented setting: the reference docs are generated from :data:`SETTINGS`, and a
    test fails when a setting read in this module is missing from it."""

    name: str
    type: str
    default: str
    meaning: str


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "redbeat_redis_url",
        "str",
        "broker_url (deprecated fallback, logged)",
        "Storage URL: redis://[user:password@]host:port/db, rediss://... (TLS), "
        "unix:///path/to/socket?db=0; other schemes come from backend plugins.",
    ),
    Setting(
        "redbeat_url",
        "str",
        "unset",
        "Storage-neutral alias of redbeat_redis_url; wins when both are set.",
    ),
    Setting(
        "redbeat_redis_options",
        "dict",
        "broker_transport_options (deprecated fallback, not forwarded)",
        "Keyword arguments for the Redis client (password, username, credential_provider, "
        "socket_timeout, health_check_interval, ...), plus RedBeat's own retry_period. "
        "Forwarded to the client only when set explicitly, as in celery-redbeat 2.4.2.",
    ),
    Setting(
        "redbeat_redis_options['retry_period']",
        "float | None",
        "None",
        "Seconds to retry a storage operation that failed on a connection error, with "
        "jittered exponential backoff capped at 30 s. None: no retry; -1: forever. While it "
        "retries, the tick waits; when it gives up, the beat logs the outage, keeps ticking and "
        "steps down once its lease has lapsed. Nothing raises out of the beat loop.",
    ),
    Setting(
        "redbeat_redis_use_ssl",
        "bool | dict",
        "broker_use_ssl",
        "TLS options for rediss:// (ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile); "
        "certificates are verified by default.",
    ),
    Setting("redbeat_key_prefix", "str", "'redbeat:'", "Prefix of every key RedBeat writes."),
    Setting(
        "redbeat_lock_key",
        "str | None",
        "'<prefix>:lock'",
        "Key of the beat lock (the prefix is added when missing). None disables locking: "
        "run a single beat only.",
    ),
    Setting(
        "redbeat_lock_timeout",
        "float (s)",
        str(DEFAULT_LOCK_TIMEOUT),
        "Lease of the beat lock: how long a crashed leader blocks scheduling. celery-redbeat "
        "defaulted to 5 x beat_max_loop_interval (25 minutes).",
    ),
    Setting(
        "redbeat_lock_renew_interval",
        "float (s)",
        "lock timeout / 3",
        "How often the leader renews its lease; must be shorter than the timeout.",
    ),
    Setting(
        "redbeat_lock_poll_interval",
        "float (s)",
        f"{DEFAULT_LOCK_POLL_INTERVAL:g}, or the renew interval if shorter",
        "How often a standby tries to take the lock.",
    ),
    Setting(
        "redbeat_batch_size",
        "int",
        str(DEFAULT_BATCH_SIZE),
        "Most entries one tick claims; more due entries follow in the next tick at once.",
    ),
    Setting(
        "redbeat_prepare_ahead",
        "float (s)",
        f"{DEFAULT_PREPARE_AHEAD:g}",
        "How long before a due time the leader claims and prepares the entries due then "
        "(decode, next run, commit), so their publishes start at the due time instead of "
        "after that work. Nothing is published before its due time, unless the beat is stopped "
        "while waiting for it: at-most-once then publishes the prepared entries at once rather "
        f"than lose their committed runs. 0 prepares at the due time; at most "
        f"{MAX_PREPARE_AHEAD:g}.",
    ),
    Setting(
        "redbeat_gc_freeze",
        "bool",
        "True",
        "At its first tick, the beat freezes the objects alive in its process (gc.freeze(), "
        "once per process), so Python's full garbage collections no longer scan them: they "
        "took 30-40 ms in a beat process and delayed the publishes they interrupted. Reference "
        "cycles among frozen objects are never collected; set False if that matters to a "
        "process that ticks a scheduler but is not a beat.",
    ),
    Setting(
        "redbeat_replica_acks",
        "int",
        "0",
        "Replicas that must have a busy tick's commit before the tick goes on (Redis WAIT, sent "
        "in the commit's round trip). With at-most-once delivery its entries are published "
        "only then, so a failover cannot bring back a due time already published, as it can "
        "when the master dies before replicating the commit. 0 does not wait. Redis and "
        "Sentinel backends; refused on Redis Cluster.",
    ),
    Setting(
        "redbeat_replica_ack_timeout",
        "float (s)",
        f"{DEFAULT_REPLICA_ACK_TIMEOUT:g}",
        "The longest a busy tick waits for redbeat_replica_acks. When fewer replicas answer in "
        "time, the beat logs a warning (once, until they answer again) and goes on. "
        "Shorter than redbeat_lock_renew_interval and than the client's socket_timeout.",
    ),
    Setting(
        "redbeat_delivery",
        "'at-most-once' | 'at-least-once'",
        "'at-most-once'",
        "at-most-once stores the next run before publishing (a crash in between loses that "
        "run); at-least-once publishes first (a crash in between publishes it again).",
    ),
    Setting(
        "redbeat_unknown_task",
        "'send' | 'quarantine'",
        "'send'",
        "An entry whose task this beat's app does not know: send it by name (Celery's "
        "behaviour) or quarantine it with the reason.",
    ),
    Setting(
        "redbeat_plugins",
        "list[str]",
        "[]",
        "Import paths of plugins to load ('pkg.module' or 'pkg.module:object').",
    ),
    Setting(
        "beat_max_loop_interval",
        "float (s)",
        str(DEFAULT_MAX_INTERVAL),
        "Celery's setting: the longest sleep between ticks.",
    ),
)


class _Settings:
    """Reads settings the way celery-redbeat does: lower or upper case, explicit or default."""

    def __init__(self, conf: Any) -> None:
        self._conf = conf
        self._present = {str(k).upper() for k in conf}

    def has(self, name: str) -> bool:
        return name.upper() in self._present

    def get(self, name: str, default: Any = None) -> Any:
        value = self._conf.first(name, name.upper())
        if self.has(name):
            return value
        return value if value is not None else default


def _positive_number(setting: str, value: Any, *, allow_zero: bool = False) -> float:
    accepted = "a number of seconds " + (">= 0" if allow_zero else "> 0")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(setting, value, accepted)
    number = float(value)
    if math.isnan(number) or number < 0 or (number == 0 and not allow_zero):
        raise ConfigurationError(setting, value, accepted)
    return number


@attrs.frozen
class RedBeatConfig:
    """All of RedBeat's settings for one Celery app, checked. Build it with :meth:`from_app`.

    The attribute names of celery-redbeat's ``RedBeatConfig`` (``key_prefix``, ``schedule_key``,
    ``statics_key``, ``redis_url``, ``redis_use_ssl``, ``redbeat_redis_options``, ``lock_key``,
    ``lock_timeout``, ``schedule``) are kept so code that reads ``app.redbeat_conf`` still works.
    """

    url: str = "redis://localhost:6379/0"
    #: Which setting ``url`` came from, so errors about it name what the user wrote.
    url_setting: str = "redbeat_redis_url"
    key_prefix: str = DEFAULT_KEY_PREFIX
    redis_use_ssl: bool | dict[str, Any] | None = None
    redbeat_redis_options: Mapping[str, Any] = attrs.field(factory=dict)
    #: True when ``redbeat_redis_options`` was set (not inherited from the broker's options);
    #: only then are its keys forwarded to the client, as celery-redbeat 2.4.2 does.
    redis_options_explicit: bool = False
    lock_key: str | None = DEFAULT_KEY_PREFIX + ":lock"
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    lock_renew_interval: float = DEFAULT_LOCK_TIMEOUT / 3
    lock_poll_interval: float = DEFAULT_LOCK_POLL_INTERVAL
    max_interval: float = DEFAULT_MAX_INTERVAL
    batch_size: int = DEFAULT_BATCH_SIZE
    prepare_ahead: float = DEFAULT_PREPARE_AHEAD
    gc_freeze: bool = True
    replica_acks: int = 0
    replica_ack_timeout: float = DEFAULT_REPLICA_ACK_TIMEOUT
    delivery: Delivery = "at-most-once"
    #: What to do with an entry whose task this beat's app does not know. Celery (and
    #: celery-redbeat) send it by name, which is right when beat does not import the tasks.
    unknown_task: UnknownTask = "send"
    plugins: tuple[str, ...] = ()
    app: Any = attrs.field(default=None, eq=False, repr=False)

    # ----------------------------------------------------------------- derived names

    @property
    def redis_url(self) -> str:
        """celery-redbeat's name for the storage URL."""
        return self.url

    @property
    def schedule_key(self) -> str:
        """The sorted set of due times. ``prefix + ':schedule'``: two colons by default, as
        celery-redbeat writes it."""
        return self.key_prefix + ":schedule"

    @property
    def statics_key(self) -> str:
        return self.key_prefix + ":statics"

    @property
    def quarantine_key(self) -> str:
        """Hash of entry name -> reason for entries that could not be decoded or run."""
        return self.key_prefix + ":quarantine"

    @property
    def retry_period(self) -> float | None:
        """Seconds to retry a failed storage operation; None = no retry, -1 = forever."""
        value = self.redbeat_redis_options.get("retry_period")
        return None if value is None else float(value)

    @property
    def client_options(self) -> dict[str, Any]:
        """``redbeat_redis_options`` minus RedBeat's own keys: what goes to the client."""
        if not self.redis_options_explicit:
            return {}
        return {
            k: v for k, v in self.redbeat_redis_options.items() if k not in INTERNAL_OPTION_KEYS
        }

    @property
    def schedule(self) -> Mapping[str, Any]:
        """The static ``beat_schedule`` of the app (celery-redbeat compat)."""
        if self.app is None:
            return {}
        return self.app.conf.beat_schedule or {}

    def key_for(self, name: str) -> str:
        """The storage key of an entry: ``prefix + name``."""
        return self.key_prefix + name

    def name_for(self, key: str) -> str:
        """The entry name of a storage key (inverse of :meth:`key_for`)."""
        return key[len(self.key_prefix) :] if key.startswith(self.key_prefix) else key

    # ----------------------------------------------------------------- reading

    @classmethod
    def from_app(cls, app: Any, **overrides: Any) -> RedBeatConfig:
        """Read and check every setting from ``app.conf``.

        ``overrides`` come from the scheduler's constructor (``lock_key``, ``lock_timeout``,
        ``max_interval``) and win over the configuration, as in celery-redbeat.
        """
        settings = _Settings(app.conf)
        values: dict[str, Any] = {"app": app}

        url, url_setting = _read_url(settings)
        values["url"] = url
        values["url_setting"] = url_setting

        prefix = settings.get("redbeat_key_prefix", DEFAULT_KEY_PREFIX)
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(
                "redbeat_key_prefix", prefix, "a non-empty string such as 'redbeat:'"
            )
        values["key_prefix"] = prefix

        values["redis_use_ssl"] = settings.get(
            "redbeat_redis_use_ssl", app.conf.get("broker_use_ssl")
        )
        options, explicit = _read_options(settings, app)
        values["redbeat_redis_options"] = options
        values["redis_options_explicit"] = explicit
        retry_period = options.get("retry_period")
        if retry_period is not None and retry_period != -1:
            _positive_number("redbeat_redis_options['retry_period']", retry_period, allow_zero=True)

        values.update(_read_lock(settings, prefix, overrides))
        max_interval = overrides.get("max_interval") or app.conf.get("beat_max_loop_interval")
        values["max_interval"] = (
            _positive_number("beat_max_loop_interval", max_interval)
            if max_interval
            else DEFAULT_MAX_INTERVAL
        )

        batch = settings.get("redbeat_batch_size", DEFAULT_BATCH_SIZE)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigurationError("redbeat_batch_size", batch, "an integer >= 1")
        values["batch_size"] = batch

        ahead = settings.get("redbeat_prepare_ahead", DEFAULT_PREPARE_AHEAD)
        if (
            isinstance(ahead, bool)
            or not isinstance(ahead, int | float)
            or not 0 <= ahead <= MAX_PREPARE_AHEAD  # (NaN fails this too)
        ):
            raise ConfigurationError(
                "redbeat_prepare_ahead",
                ahead,
                f"a number of seconds from 0 to {MAX_PREPARE_AHEAD:g}",
            )
        values["prepare_ahead"] = float(ahead)

        gc_freeze = settings.get("redbeat_gc_freeze", True)
        if not isinstance(gc_freeze, bool):
            raise ConfigurationError("redbeat_gc_freeze", gc_freeze, "True or False")
        values["gc_freeze"] = gc_freeze
        values.update(_read_replica_acks(settings, values["lock_renew_interval"]))

        delivery = settings.get("redbeat_delivery", "at-most-once")
        if delivery not in DELIVERY_MODES:
            raise ConfigurationError("redbeat_delivery", delivery, " or ".join(DELIVERY_MODES))
        values["delivery"] = delivery

        unknown_task = settings.get("redbeat_unknown_task", "send")
        if unknown_task not in UNKNOWN_TASK_MODES:
            raise ConfigurationError(
                "redbeat_unknown_task", unknown_task, " or ".join(UNKNOWN_TASK_MODES)
            )
        values["unknown_task"] = unknown_task

        plugins = settings.get("redbeat_plugins", ())
        if isinstance(plugins, str):
            plugins = [p.strip() for p in plugins.split(",") if p.strip()]
        if not isinstance(plugins, list | tuple) or not all(isinstance(p, str) for p in plugins):
            raise ConfigurationError(
                "redbeat_plugins", plugins, "a list of import paths such as ['mypkg.plugin']"
            )
        values["plugins"] = tuple(plugins)
        return cls(**values)


def _read_lock(settings: _Settings, prefix: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Lock key, timeout, renew and standby poll intervals, checked against each other."""
    lock_key = overrides.get("lock_key") or settings.get("redbeat_lock_key", prefix + ":lock")
    if settings.has("redbeat_lock_key") and settings.get("redbeat_lock_key") is None:
        lock_key = overrides.get("lock_key")  # None disables locking (single beat)
    if lock_key is not None:
        if not isinstance(lock_key, str) or not lock_key:
            raise ConfigurationError(
                "redbeat_lock_key", lock_key, "a string, or None to run without a lock"
            )
        if not lock_key.startswith(prefix):
            lock_key = prefix + lock_key

    lock_timeout = overrides.get("lock_timeout") or settings.get("redbeat_lock_timeout")
    timeout = (
        _positive_number("redbeat_lock_timeout", lock_timeout)
        if lock_timeout is not None
        else DEFAULT_LOCK_TIMEOUT
    )
    renew = settings.get("redbeat_lock_renew_interval")
    renew_s = (
        _positive_number("redbeat_lock_renew_interval", renew) if renew is not None else timeout / 3
    )
    if timeout <= renew_s:
        raise ConfigurationError(
            "redbeat_lock_timeout",
            timeout,
            f"must be longer than redbeat_lock_renew_interval ({renew_s:g}s), or the lock "
            "lapses between renewals; raise the timeout or lower the renew interval",
        )
    poll = settings.get("redbeat_lock_poll_interval")
    poll_s = (
        _positive_number("redbeat_lock_poll_interval", poll)
        if poll is not None
        else min(DEFAULT_LOCK_POLL_INTERVAL, renew_s)
    )
    return {
        "lock_key": lock_key,
        "lock_timeout": timeout,
        "lock_renew_interval": renew_s,
        "lock_poll_interval": poll_s,
    }


def _read_replica_acks(settings: _Settings, renew_interval: float) -> dict[str, Any]:
    """How many replicas must acknowledge a commit, and for how long a tick waits for them:
    less than the lock's renew interval, which the commit's lease extension has to outlast."""
    acks = settings.get("redbeat_replica_acks", 0)
    if isinstance(acks, bool) or not isinstance(acks, int) or acks < 0:
        raise ConfigurationError(
            "redbeat_replica_acks", acks, "an integer >= 0 (0 = do not wait for replicas)"
        )
    timeout = settings.get("redbeat_replica_ack_timeout", DEFAULT_REPLICA_ACK_TIMEOUT)
    seconds = _positive_number("redbeat_replica_ack_timeout", timeout)
    if acks and seconds >= renew_interval:  # (unused without acks: a short lock is fine then)
        raise ConfigurationError(
            "redbeat_replica_ack_timeout",
            timeout,
            f"a number of seconds shorter than redbeat_lock_renew_interval ({renew_interval:g}s),"
            " or a tick waiting for replicas could outlive the lock",
        )
    return {"replica_acks": acks, "replica_ack_timeout": seconds}


def _read_url(settings: _Settings) -> tuple[str, str]:
    for name in ("redbeat_url", "redbeat_redis_url"):
        if settings.has(name) and settings.get(name):
            url = settings.get(name)
            if not isinstance(url, str):
                raise ConfigurationError(name, url, "a URL string such as redis://host:6379/0")
            return url, name
    broker_url = settings.get("broker_url")
    if not broker_url:
        raise ConfigurationError(
            "redbeat_redis_url",
            None,
            "set it (or its storage-neutral alias redbeat_url) to the URL of the storage that "
            "holds the schedule, e.g. redis://localhost:6379/0",
        )
    # DeprecationWarning is silenced by default and beat usually runs as a daemon: log it too.
    message = (
        "RedBeat falls back to broker_url for its storage; this fallback will go away, "
        "set redbeat_redis_url explicitly"
    )
    warnings.warn(message, DeprecationWarning, stacklevel=4)
    logger.warning(message)
    return str(broker_url), "broker_url"


def _read_options(settings: _Settings, app: Any) -> tuple[dict[str, Any], bool]:
    if settings.has("redbeat_redis_options"):
        options = settings.get("redbeat_redis_options") or {}
        explicit = True
    else:
        options = app.conf.get("broker_transport_options") or {}
        explicit = False
        if options:
            message = (
                "RedBeat falls back to broker_transport_options for its Redis options; this "
                "fallback will go away, set redbeat_redis_options explicitly"
            )
            warnings.warn(message, DeprecationWarning, stacklevel=4)
            logger.warning(message)
    if not isinstance(options, Mapping):
        raise ConfigurationError(
            "redbeat_redis_options", options, "a dict of options for the Redis client"
        )
    return dict(options), explicit
