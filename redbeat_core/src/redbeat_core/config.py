"""RedBeat's core settings and :class:`RedBeatConfig`, the checked value a scheduler runs on.

The core declares its settings here (:data:`CORE_SETTINGS`, registered by
:mod:`redbeat_core.defaults` through the ``redbeat_register_settings`` hook like any plugin's);
backends and plugins declare theirs the same way (:mod:`redbeat_core.settings`). Every
celery-redbeat 2.4 setting keeps its name, default and meaning, in lower case
(``redbeat_lock_timeout``) and upper case (``REDBEAT_LOCK_TIMEOUT``). Values are checked once, at
start-up, so that a bad one fails with the setting's name and what is accepted instead of
surfacing mid-loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import attrs

from redbeat_core.audit import DEFAULT_LIMIT as DEFAULT_AUDIT_LIMIT
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.history import DEFAULT_PER_ENTRY, DEFAULT_TOTAL, HistoryLimits
from redbeat_core.masking import redacted_repr, userinfo_spills
from redbeat_core.settings import (
    CORE_OWNER,
    InvalidValue,
    Setting,
    SettingRegistry,
    Settings,
    boolean,
    choice,
    import_paths,
    integer,
    optional,
    seconds,
    text,
)

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
#: Seconds one entry may take to plan (decode, is_due, next run). A healthy one takes tens of
#: microseconds; a second is far beyond any schedule worth keeping and short of the lease.
DEFAULT_ENTRY_TIME_BUDGET: Final = 1.0
#: The shortest interval an entry may have. Sub-second intervals are used in the wild (polls
#: every 0.5 s) and celery-redbeat ran them. Each run is a busy tick of its own (two round
#: trips, the plan, a publish): measured against a loopback server, one entry every 0.1 s costs the
#: beat about 2% of a core and is published on time (100 ms apart, within 3 ms); every 0.01 s,
#: 21%; at 0 it is published in a loop, as often as the beat can tick.
DEFAULT_MIN_INTERVAL: Final = 0.1
#: Runs per transport batch (kombu's ``Producer.batch``): a 1,000-run tick in ten pipelines.
DEFAULT_PUBLISH_BATCH: Final = 100
PUBLISH_BATCH_SETTING: Final = "redbeat_publish_batch"
#: Scores are stored with millisecond precision: no shorter interval can be told apart.
SMALLEST_MIN_INTERVAL: Final = 0.001

Delivery = Literal["at-most-once", "at-least-once"]
DELIVERY_MODES: Final[tuple[Delivery, ...]] = ("at-most-once", "at-least-once")
UnknownTask = Literal["send", "quarantine"]
UNKNOWN_TASK_MODES: Final[tuple[UnknownTask, ...]] = ("send", "quarantine")

#: The storage URL's setting; backends may declare other names for it (aliases).
URL_SETTING: Final = "redbeat_url"
PLUGINS_SETTING: Final = "redbeat_plugins"


def _lock_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidValue("a string, or None to run without a lock")
    return value


def _min_interval(value: Any) -> float:
    accepted = (
        f"a finite number of seconds >= {SMALLEST_MIN_INTERVAL:g} (due times are stored to "
        "the millisecond)"
    )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(accepted)
    if not math.isfinite(value) or value < SMALLEST_MIN_INTERVAL:
        raise InvalidValue(accepted)
    return float(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise InvalidValue("a URL string such as scheme://host:port/path")
    if userinfo_spills(value):
        # Parsers would read part of the password as a host, port or path, and show it.
        raise InvalidValue(
            "a URL whose password is percent-encoded: a '/', '?' or '#' in it ends the host "
            "part early (encode it with urllib.parse.quote(password, safe=''), or pass the "
            "password in the backend's options instead of the URL)"
        )
    return value


#: The settings RedBeat's core reads. Storage backends and plugins declare their own.
CORE_SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        URL_SETTING,
        "str",
        None,
        "Storage URL: its scheme picks the storage backend (each backend documents its URL "
        "forms); an unknown scheme fails at start-up naming what to install.",
        parse=_url,
        default_doc="broker_url (deprecated fallback, logged)",
        fallback="broker_url",
        fallback_warning=(
            "RedBeat falls back to broker_url for its storage; this fallback will go away, "
            "set {names} explicitly"
        ),
    ),
    Setting(
        "redbeat_key_prefix",
        "str",
        DEFAULT_KEY_PREFIX,
        "Prefix of every key RedBeat writes.",
        parse=text(DEFAULT_KEY_PREFIX),
    ),
    Setting(
        "redbeat_lock_key",
        "str | None",
        None,
        "Key of the beat lock (the prefix is added when missing). None disables locking: "
        "run a single beat only.",
        parse=_lock_key,
        default_doc="'<prefix>:lock'",
        none_is_value=True,
    ),
    Setting(
        "redbeat_lock_timeout",
        "float (s)",
        DEFAULT_LOCK_TIMEOUT,
        "Lease of the beat lock: how long a crashed leader blocks scheduling. celery-redbeat "
        "defaulted to 5 x beat_max_loop_interval (25 minutes).",
        parse=seconds(),
    ),
    Setting(
        "redbeat_lock_renew_interval",
        "float (s)",
        None,
        "How often the leader renews its lease; must be shorter than the timeout.",
        parse=seconds(),
        default_doc="lock timeout / 3",
    ),
    Setting(
        "redbeat_lock_poll_interval",
        "float (s)",
        None,
        "How often a standby tries to take the lock.",
        parse=seconds(),
        default_doc=f"{DEFAULT_LOCK_POLL_INTERVAL:g}, or the renew interval if shorter",
    ),
    Setting(
        "redbeat_batch_size",
        "int",
        DEFAULT_BATCH_SIZE,
        "Most entries one tick claims; more due entries follow in the next tick at once.",
        parse=integer(minimum=1),
    ),
    Setting(
        "redbeat_prepare_ahead",
        "float (s)",
        DEFAULT_PREPARE_AHEAD,
        "How long before a due time the leader claims and prepares the entries due then "
        "(decode, next run, commit), so their publishes start at the due time instead of "
        "after that work. Nothing is published before its due time, unless the beat is stopped "
        "while waiting for it: at-most-once then publishes the prepared entries at once rather "
        f"than lose their committed runs. 0 prepares at the due time; at most "
        f"{MAX_PREPARE_AHEAD:g}.",
        parse=seconds(allow_zero=True, maximum=MAX_PREPARE_AHEAD),
    ),
    Setting(
        "redbeat_entry_time_budget",
        "float (s)",
        DEFAULT_ENTRY_TIME_BUDGET,
        "The longest one entry may take to plan (decode it, ask its schedule whether it is "
        "due and when it runs next): an entry that takes longer is quarantined with the "
        "reason, so one schedule that needs too much work (a recurrence rule that never "
        "matches, a plugin's bug) cannot stall the tick for everyone. A tick also stops "
        "planning after half the lock's renew interval and leaves the rest to the next tick, "
        "whose claim renews the lease first. 0: no limit. Enforced with SIGVTALRM (a CPU-time "
        "timer) in the beat's main thread, when nothing else uses it.",
        parse=seconds(allow_zero=True),
    ),
    Setting(
        PUBLISH_BATCH_SETTING,
        "int",
        DEFAULT_PUBLISH_BATCH,
        "Most runs a tick publishes in one transport batch (kombu's Producer.batch(): a batching "
        "transport sends them in one round trip) when the broker's transport can batch; Celery's "
        "apply_async runs unchanged for each. At-most-once commits before the batch is "
        "flushed, at-least-once flushes before it commits; a failed flush fails every run it "
        "held. Runs prepared ahead wait for their due time: the batch is flushed before each "
        "wait. 1 publishes each run at once.",
        parse=integer(minimum=1),
    ),
    Setting(
        "redbeat_summary_interval",
        "float (s)",
        300.0,
        "How often the leading beat logs a one-line summary at INFO: entries scheduled, and "
        "runs dispatched, skipped, published late (over 1 s) and failed since the last one. "
        "0 turns it off.",
        parse=seconds(allow_zero=True),
    ),
    Setting(
        "redbeat_history_per_entry",
        "int",
        DEFAULT_PER_ENTRY,
        "How many run records (sent, failed, unsent, skipped, postponed, manual) the store "
        "keeps for each entry, newest first, for 'redbeat history NAME' and "
        "Schedule.history(name). Written by the beat's next claim (no extra round trip). Each "
        "record is about 150 bytes: with a million entries, 10 per entry is about 1.5 GB of "
        "storage (memory, for an in-memory store); lower it, or 0 for none (the "
        "schedule-wide history still names the entry).",
        parse=integer(minimum=0),
    ),
    Setting(
        "redbeat_history_total",
        "int",
        DEFAULT_TOTAL,
        "How many run records the store keeps for the whole schedule, newest first, for "
        "'redbeat history' and Schedule.history(). 0 with redbeat_history_per_entry 0 turns "
        "run history off.",
        parse=integer(minimum=0),
    ),
    Setting(
        "redbeat_audit_limit",
        "int",
        DEFAULT_AUDIT_LIMIT,
        "How many changes to the schedule the audit log keeps, newest first, for 'redbeat "
        "audit' and Schedule.audit(): every save, delete, pause, import, apply and start-up "
        "sync of beat_schedule, with who, what and when. One more round trip per change "
        "(never per tick). 0 turns it off.",
        parse=integer(minimum=0),
    ),
    Setting(
        "redbeat_min_interval",
        "float (s)",
        DEFAULT_MIN_INTERVAL,
        "The shortest interval an entry may have. Saving a shorter one (0, negative, 1e-9) "
        "raises InvalidEntryError, a static in beat_schedule with one is refused at start-up "
        "(the others are synced), and one found stored (written by celery-redbeat or a "
        "script) is quarantined: it would be due again as soon as it ran, and published in a "
        "loop. The default lets the sub-second intervals that Celery users run through "
        "while bounding what one entry costs: each run is a busy tick of its own, and one "
        "entry every 0.1 s takes about 2% of a core (every 0.01 s, 21%). Raise it to keep "
        "sub-second entries out of a shared beat; lower it (down to "
        f"{SMALLEST_MIN_INTERVAL:g}) only for a beat that serves little else.",
        parse=_min_interval,
    ),
    Setting(
        "redbeat_gc_freeze",
        "bool",
        True,
        "At its first tick, the beat freezes the objects alive in its process (gc.freeze(), "
        "once per process), so Python's full garbage collections no longer scan them: they "
        "took 30-40 ms in a beat process and delayed the publishes they interrupted. Reference "
        "cycles among frozen objects are never collected; set False if that matters to a "
        "process that ticks a scheduler but is not a beat.",
        parse=boolean,
    ),
    Setting(
        "redbeat_delivery",
        "'at-most-once' | 'at-least-once'",
        "at-most-once",
        "at-most-once stores the next run before publishing (a crash in between loses that "
        "run); at-least-once publishes first (a crash in between publishes it again).",
        parse=choice(*DELIVERY_MODES),
    ),
    Setting(
        "redbeat_unknown_task",
        "'send' | 'quarantine'",
        "send",
        "An entry whose task this beat's app does not know: send it by name (Celery's "
        "behaviour) or quarantine it with the reason.",
        parse=choice(*UNKNOWN_TASK_MODES),
    ),
    Setting(
        PLUGINS_SETTING,
        "list[str]",
        (),
        "Import paths of plugins to load ('pkg.module' or 'pkg.module:object').",
        parse=import_paths,
        default_doc="[]",
    ),
    Setting(
        "beat_max_loop_interval",
        "float (s)",
        DEFAULT_MAX_INTERVAL,
        "Celery's setting: the longest sleep between ticks (0: Celery's default, 300).",
        parse=optional(seconds(allow_zero=True)),
    ),
)


def core_registry() -> SettingRegistry:
    """A registry holding only the core's settings (what ``redbeat.defaults`` declares)."""
    registry = SettingRegistry()
    registry.add(*CORE_SETTINGS, owner=CORE_OWNER)
    return registry


def plugin_paths(conf: Any) -> tuple[str, ...]:
    """``redbeat_plugins``, read before any plugin is loaded (it says which to load)."""
    registry = SettingRegistry()
    registry.add(*(s for s in CORE_SETTINGS if s.name == PLUGINS_SETTING), owner=CORE_OWNER)
    paths: tuple[str, ...] = registry.read(conf)[PLUGINS_SETTING]
    return paths


@attrs.frozen
class RedBeatConfig:
    """All of RedBeat's settings for one Celery app, checked.

    Build it with :meth:`from_app` (or :meth:`from_settings`). The core's settings are fields;
    every other declared setting (a backend's, a plugin's) is in :attr:`settings`, read by its
    owner. celery-redbeat's attribute names (``key_prefix``, ``schedule_key``, ``statics_key``,
    ``lock_key``, ``lock_timeout``, ``schedule``, and those the backends declare with their
    settings) still read the same values, for code that reads ``app.redbeat_conf``.
    """

    #: The storage URL; its repr masks secrets (see :mod:`redbeat_core.masking`).
    url: str = attrs.field(default="", repr=redacted_repr)
    #: Which setting ``url`` came from, so errors about it name what the user wrote.
    url_setting: str = URL_SETTING
    key_prefix: str = DEFAULT_KEY_PREFIX
    lock_key: str | None = DEFAULT_KEY_PREFIX + ":lock"
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    lock_renew_interval: float = DEFAULT_LOCK_TIMEOUT / 3
    lock_poll_interval: float = DEFAULT_LOCK_POLL_INTERVAL
    max_interval: float = DEFAULT_MAX_INTERVAL
    batch_size: int = DEFAULT_BATCH_SIZE
    prepare_ahead: float = DEFAULT_PREPARE_AHEAD
    entry_time_budget: float = DEFAULT_ENTRY_TIME_BUDGET
    min_interval: float = DEFAULT_MIN_INTERVAL
    #: How much run history the store keeps (``redbeat_history_per_entry``/``_total``).
    history: HistoryLimits = attrs.field(factory=HistoryLimits)
    #: How many changes the audit log keeps (``redbeat_audit_limit``; 0: no log).
    audit_limit: int = DEFAULT_AUDIT_LIMIT
    gc_freeze: bool = True
    delivery: Delivery = "at-most-once"
    #: What to do with an entry whose task this beat's app does not know. Celery (and
    #: celery-redbeat) send it by name, which is right when beat does not import the tasks.
    unknown_task: UnknownTask = "send"
    plugins: tuple[str, ...] = ()
    #: Every declared setting's value, the core's included (backends and plugins read theirs).
    settings: Settings = attrs.field(factory=Settings)
    app: Any = attrs.field(default=None, eq=False, repr=False)

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            """celery-redbeat's attribute for a value a backend or plugin declared (its
            ``Setting.attribute``). Hidden from type checkers: typed code reads ``settings``."""
            if name.startswith("_") or name == "settings":
                raise AttributeError(name)
            try:
                return self.settings.by_attribute(name)
            except KeyError:
                msg = f"{type(self).__name__!r} object has no attribute {name!r}"
                raise AttributeError(msg) from None

    # ----------------------------------------------------------------- derived names

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
        """Entry name -> reason for entries that could not be decoded or run."""
        return self.key_prefix + ":quarantine"

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
        """Read and check every declared setting from ``app.conf`` (loading the plugins that
        declare them: the core, the installed backends and plugins, ``redbeat_plugins``).

        ``overrides`` come from the scheduler's constructor (``lock_key``, ``lock_timeout``,
        ``max_interval``) and win over the configuration, as in celery-redbeat.
        """
        from redbeat_core.celeryconf import CeleryConf
        from redbeat_core.plugins import PluginManager

        conf = CeleryConf(app)
        manager = PluginManager.load(plugin_paths(conf))
        registry = manager.settings_registry()
        config = cls.from_settings(registry.read(conf), app=app, **overrides)
        registry.run_checks(config)
        config.settings.warn_fallbacks()
        return config

    @classmethod
    def from_settings(cls, settings: Settings, *, app: Any = None, **overrides: Any) -> Self:
        """The config for checked ``settings``: the core's values, with the defaults that
        depend on other settings worked out and checked against each other."""
        # No URL is refused when a backend is chosen (BackendRegistry.scheme_for): a backend
        # may be chosen without one (a client the user assigned to the app).
        url = settings.get(URL_SETTING) or ""
        prefix: str = overrides.get("key_prefix") or settings["redbeat_key_prefix"]
        max_interval = overrides.get("max_interval") or settings.get("beat_max_loop_interval")
        if overrides.get("max_interval"):
            max_interval = _override("beat_max_loop_interval", max_interval)
        return cls(
            url=url,
            url_setting=settings.source(URL_SETTING),
            key_prefix=prefix,
            max_interval=float(max_interval) if max_interval else DEFAULT_MAX_INTERVAL,
            batch_size=settings["redbeat_batch_size"],
            prepare_ahead=float(settings["redbeat_prepare_ahead"]),
            entry_time_budget=float(settings["redbeat_entry_time_budget"]),
            min_interval=settings["redbeat_min_interval"],
            history=HistoryLimits(
                per_entry=settings["redbeat_history_per_entry"],
                total=settings["redbeat_history_total"],
            ),
            audit_limit=settings["redbeat_audit_limit"],
            gc_freeze=settings["redbeat_gc_freeze"],
            delivery=settings["redbeat_delivery"],
            unknown_task=settings["redbeat_unknown_task"],
            plugins=tuple(settings[PLUGINS_SETTING]),
            settings=settings,
            app=app,
            **_lock_timing(settings, prefix, overrides),
        )


def missing_url(config: RedBeatConfig) -> ConfigurationError:
    """The error for a config without a storage URL that no backend claimed."""
    names = " or ".join([URL_SETTING, *_aliases(config.settings, URL_SETTING)])
    return ConfigurationError(
        URL_SETTING, None, f"set {names} to the URL of the storage that holds the schedule"
    )


def _aliases(settings: Settings, name: str) -> list[str]:
    return settings.registry.aliases_of(name) if settings.registry is not None else []


def _override(setting: str, value: Any) -> float:
    try:
        number: float = seconds()(value)
    except InvalidValue as exc:
        raise ConfigurationError(setting, value, exc.accepted) from None
    return number


def _lock_timing(settings: Settings, prefix: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Lock key, timeout, renew and standby poll intervals, checked against each other."""
    if "lock_key" in overrides:  # None here too: code turned the lock off (single beat)
        lock_key: str | None = overrides["lock_key"]
    else:
        lock_key = settings.get("redbeat_lock_key")
        if lock_key is None and "redbeat_lock_key" not in settings.explicit:
            lock_key = prefix + ":lock"  # unset: the default; set to None: no lock
    if lock_key is not None and not lock_key.startswith(prefix):
        lock_key = prefix + lock_key

    timeout = (
        _override("redbeat_lock_timeout", overrides["lock_timeout"])
        if overrides.get("lock_timeout")
        else float(settings["redbeat_lock_timeout"])
    )
    renew = settings.get("redbeat_lock_renew_interval")
    renew_s = float(renew) if renew is not None else timeout / 3
    if timeout <= renew_s:
        raise ConfigurationError(
            "redbeat_lock_timeout",
            timeout,
            f"must be longer than redbeat_lock_renew_interval ({renew_s:g}s), or the lock "
            "lapses between renewals; raise the timeout or lower the renew interval",
        )
    poll = settings.get("redbeat_lock_poll_interval")
    poll_s = float(poll) if poll is not None else min(DEFAULT_LOCK_POLL_INTERVAL, renew_s)
    return {
        "lock_key": lock_key,
        "lock_timeout": timeout,
        "lock_renew_interval": renew_s,
        "lock_poll_interval": poll_s,
    }
