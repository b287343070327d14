"""Settings declared by their owners: RedBeat's core, each backend and each plugin.

Every setting RedBeat reads is declared once, by the distribution that uses it, through the
``redbeat_register_settings`` hook (pytest's ``pytest_addoption`` is the model): its name, type,
default, a parser that checks a value and what it means. From those declarations RedBeat reads
the Celery configuration, checks every value once at start-up (a bad one stops start-up with
the setting's name, what is accepted and, for a plugin's setting, the plugin's name), warns about
``redbeat_*`` keys that nobody declared (naming the closest declared one), and generates the
settings reference. Nothing reads ``app.conf`` for a RedBeat setting anywhere else.

Values are read the way celery-redbeat reads them: lower case (``redbeat_lock_timeout``) or upper
case (``REDBEAT_LOCK_TIMEOUT``); a setting that is absent, or present but ``None``, takes its
fallback (a Celery setting such as ``broker_url``) or its default, unless it declares that
``None`` is a value of its own (``redbeat_lock_key = None`` turns locking off).
"""

from __future__ import annotations

import difflib
import logging
import math
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, Final

import attrs

from redbeat_core.exceptions import ConfigurationError
from redbeat_core.masking import redacted_repr

__all__ = [
    "CORE_OWNER",
    "InvalidValue",
    "Parser",
    "Setting",
    "SettingRegistry",
    "Settings",
    "boolean",
    "choice",
    "import_paths",
    "integer",
    "mapping",
    "optional",
    "seconds",
    "text",
]

logger = logging.getLogger("celery.beat")

#: The owner of RedBeat's own settings (no plugin name is added to their errors).
CORE_OWNER: Final = "redbeat-core"
#: Keys starting with this (in any case) are RedBeat's: an undeclared one is warned about.
PREFIX: Final = "redbeat_"


class InvalidValue(ValueError):
    """Raised by a :data:`Parser`: the value cannot be used. ``accepted`` says what can, in
    words that complete "invalid setting name=value: ..." (e.g. "a number of seconds > 0").

    For a dict-valued setting, ``key`` names the key at fault and ``value`` its value, so the
    error says ``invalid setting redbeat_x['key']=value``.
    """

    def __init__(self, accepted: str, *, key: str | None = None, value: Any = None) -> None:
        self.accepted = accepted
        self.key = key
        self.value = value
        super().__init__(accepted)


#: Checks a value that was set and returns the value to use; raises :class:`InvalidValue`.
Parser = Callable[[Any], Any]


def _keep(value: Any) -> Any:
    return value


@attrs.frozen
class Setting:
    """One declared setting.

    :param name: the key in the Celery configuration, lower case (``redbeat_lock_timeout``).
    :param type: the type as the reference shows it, e.g. ``"float (s)"``.
    :param default: the value when the setting is not set; never passed to ``parse``.
    :param doc: what it means, for the reference (plain text, identifiers set as code there).
    :param parse: checks a value that was set and returns the value to use (converted if need
        be); raises :class:`InvalidValue` saying what is accepted.
    :param default_doc: how the reference shows the default, when ``repr(default)`` would not
        say it (a default computed from other settings, a fallback).
    :param fallback: a Celery setting whose value is used when this one is not set (parsed like
        a value of this setting).
    :param fallback_warning: when given, using a non-empty fallback logs this and raises a
        ``DeprecationWarning`` (a fallback that will go away), when the runtime is built
        (:meth:`Settings.warn_fallbacks`).
    :param none_is_value: ``None`` set explicitly is a value of its own, passed to ``parse``,
        rather than "not set".
    :param alias_of: this name is another name for that setting, read when that one is not set
        (a backend's own, older name for ``redbeat_url``, say). Type, default and parser are the
        target's.
    :param attribute: the attribute of ``RedBeatConfig`` under which celery-redbeat code reads
        this value, for compatibility with code that reads ``app.redbeat_conf``.
    :param keys: documented keys of a dict-valued setting, shown as rows of their own.
    :param owner: the distribution that declared it; set by :meth:`SettingRegistry.add`.
    """

    name: str
    type: str = ""
    default: Any = None
    doc: str = ""
    parse: Parser = attrs.field(default=_keep, eq=False, repr=False)
    default_doc: str | None = None
    fallback: str | None = None
    fallback_warning: str | None = None
    none_is_value: bool = False
    alias_of: str | None = None
    attribute: str | None = None
    keys: tuple[Setting, ...] = ()
    owner: str = ""

    @property
    def shown_default(self) -> str:
        """The default as the reference shows it."""
        if self.default_doc is not None:
            return self.default_doc
        return repr(self.default)


def _accepted(setting: Setting, accepted: str) -> str:
    """What is accepted, plus who declared the setting when it is not RedBeat's core: a bad
    value for a plugin's setting must say which plugin to read about."""
    if setting.owner and setting.owner != CORE_OWNER:
        return f"{accepted} (a setting of the plugin {setting.owner})"
    return accepted


def invalid(setting: Setting, value: Any, accepted: str) -> ConfigurationError:
    """The error for ``value`` of ``setting``, naming the setting, the value, what is accepted
    and, for a plugin's setting, the plugin."""
    return ConfigurationError(setting.name, value, _accepted(setting, accepted))


#: A check across settings, run once a config is built: ``check(config)`` raises
#: :class:`ConfigurationError` (the config is a ``RedBeatConfig``; typed loosely to keep this
#: module below ``config``).
Check = Callable[[Any], None]


@attrs.define
class SettingRegistry:
    """Every declared setting, filled by the ``redbeat_register_settings`` hook.

    A name may be declared once; a second owner declaring it is an error naming both, as two
    plugins registering one URL scheme is.
    """

    _settings: dict[str, Setting] = attrs.field(factory=dict)
    _checks: list[tuple[Check, str]] = attrs.field(factory=list)

    def add(self, *settings: Setting, owner: str) -> None:
        """Declare ``settings`` as ``owner``'s (the distribution's name, used in errors)."""
        for setting in settings:
            name = setting.name
            if name != name.lower():
                msg = f"setting names are declared in lower case: {name!r} ({owner})"
                raise ValueError(msg)
            existing = self._settings.get(name)
            if existing is not None and existing.owner != owner:
                msg = f"the setting {name!r} is declared twice: by {existing.owner} and {owner}"
                raise ValueError(msg)
            self._settings[name] = attrs.evolve(setting, owner=owner)

    def check(self, check: Check, *, owner: str) -> None:
        """Run ``check(config)`` on every config built: for rules across settings (a timeout
        that must be shorter than another setting, say). It raises ``ConfigurationError``."""
        self._checks.append((check, owner))

    def run_checks(self, config: Any) -> None:
        """Run every check; an error from a plugin's check names the plugin."""
        for check, owner in self._checks:
            try:
                check(config)
            except ConfigurationError as exc:
                setting = Setting(exc.setting, owner=owner)
                raise invalid(setting, exc.value, exc.accepted) from None

    def __iter__(self) -> Iterator[Setting]:
        """Every declared setting (aliases included), in declaration order."""
        return iter(self._settings.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._settings

    def __getitem__(self, name: str) -> Setting:
        return self._settings[name]

    def aliases_of(self, name: str) -> list[str]:
        return [s.name for s in self._settings.values() if s.alias_of == name]

    def closest(self, name: str) -> str | None:
        """The declared name closest to ``name`` (a likely misspelling), or None."""
        found = difflib.get_close_matches(name.lower(), list(self._settings), n=1, cutoff=0.6)
        return found[0] if found else None

    # ----------------------------------------------------------------- reading

    def read(self, conf: Any) -> Settings:
        """Every declared setting's value from a Celery configuration, checked.

        :raises ConfigurationError: for the first value that its parser refuses.
        """
        for alias in self._settings.values():
            if alias.alias_of is not None and alias.alias_of not in self._settings:
                msg = f"{alias.name!r} ({alias.owner}) is an alias of {alias.alias_of!r}, which "
                msg += "nobody declared"
                raise ValueError(msg)
        # Every value is read with conf.get before the configuration is iterated: iterating a
        # Celery configuration that is not finalized yet finalizes it and drops what
        # app.conf.add_defaults() added (celery-redbeat reads those, so we must too).
        targets = [s for s in self._settings.values() if s.alias_of is None]
        found = {s.name: _lookup(conf, [s.name, *self.aliases_of(s.name)]) for s in targets}
        inherited = {s.name: s.fallback and conf.get(s.fallback) for s in targets}
        present: Mapping[str, str] = {}
        if any(found[s.name] is None and s.none_is_value for s in targets):
            present = _present(conf)
        values: dict[str, Any] = {}
        explicit: set[str] = set()
        sources: dict[str, str] = {}
        for setting in targets:
            names = [setting.name, *self.aliases_of(setting.name)]
            hit = found[setting.name]
            if hit is None and setting.none_is_value:
                hit = next(((name, None) for name in names if name in present), None)
            self._record(setting, names, hit, inherited[setting.name], values, explicit, sources)
        return Settings(
            values=values, explicit=frozenset(explicit), sources=sources, registry=self, conf=conf
        )

    def _record(
        self,
        setting: Setting,
        names: list[str],
        hit: tuple[str, Any] | None,
        inherited: Any,
        values: dict[str, Any],
        explicit: set[str],
        sources: dict[str, str],
    ) -> None:
        """Check and record one setting's value: the one set (``hit``), else its fallback's
        (``inherited``), else its default."""
        if hit is not None:
            key, value = hit
            explicit.add(setting.name)
            sources[setting.name] = key
            values[setting.name] = self._parse(setting, key, value)
            return
        fallback = _fallback(setting, inherited)
        if fallback is not None and setting.fallback is not None:
            sources[setting.name] = setting.fallback
            # A bad inherited value names the key the operator did set, and why it was read.
            values[setting.name] = self._parse(
                setting, setting.fallback, fallback, note=f"read as {setting.name}, unset"
            )
        else:
            sources[setting.name] = setting.name
            values[setting.name] = setting.default

    def read_late(self, conf: Any, name: str, into: dict[str, Any]) -> Any:
        """Read one setting declared after the others were read (see :class:`Settings`)."""
        setting = self._settings[name]
        target = self._settings[setting.alias_of] if setting.alias_of else setting
        names = [target.name, *self.aliases_of(target.name)]
        hit = _lookup(conf, names)
        if hit is None and target.none_is_value:
            present = _present(conf)
            hit = next(((n, None) for n in names if n in present), None)
        inherited = target.fallback and conf.get(target.fallback)
        self._record(target, names, hit, inherited, into, set(), {})
        return into[target.name]

    def _parse(self, setting: Setting, key: str, value: Any, *, note: str = "") -> Any:
        try:
            return setting.parse(value)
        except InvalidValue as exc:
            if exc.key is not None:
                key, value = f"{key}[{exc.key!r}]", exc.value
            accepted = f"{exc.accepted} ({note})" if note else exc.accepted
            raise invalid(attrs.evolve(setting, name=key), value, accepted) from None

    def warn_undeclared(self, conf: Any) -> list[str]:
        """Log a warning for every ``redbeat_*`` key (any case) that nobody declared, with the
        closest declared name; returns the keys warned about. A misspelled setting is
        otherwise ignored without a word (``redbeat_lock_timout = 30`` keeps 10 s)."""
        unknown = sorted(
            key
            for key in map(str, conf)
            if key.lower().startswith(PREFIX) and key.lower() not in self._settings
        )
        for key in unknown:
            near = self.closest(key)
            hint = f"; did you mean {near}?" if near else ""
            logger.warning(
                "RedBeat: the setting %s is not declared by RedBeat or by any installed plugin, "
                "so it is ignored%s",
                key,
                hint,
            )
        return unknown


def _present(conf: Any) -> dict[str, str]:
    """The configuration's keys by their lower-case form."""
    return {str(key).lower(): str(key) for key in conf}


def _lookup(conf: Any, names: Iterable[str]) -> tuple[str, Any] | None:
    """``(name, value)`` of the first of ``names`` set in ``conf`` (not None), or None.

    Values are read with ``conf.get`` in lower and upper case, as celery-redbeat reads them
    (``conf.first``): that also sees settings added with ``app.conf.add_defaults(...)``, which
    iterating the configuration does not list. A key set to ``None`` counts as not set here (a
    setting for which ``None`` is a value checks the keys the configuration lists).
    """
    for name in names:
        for key in (name, name.upper()):
            value = conf.get(key)
            if value is not None:
                return name, value
    return None


def _fallback(setting: Setting, value: Any) -> Any:
    """The fallback's value (read by the caller), or None when it is unset or empty."""
    if setting.fallback is None or value is None or value in ("", {}):
        return None
    return value


@attrs.frozen
class Settings:
    """The values of every declared setting for one Celery app, checked (read once).

    A setting declared by a plugin registered after the values were read (a test registering
    a plugin into a running app's manager; the registration hook is historic) is read from the
    same configuration the first time it is asked for, and checked then.
    """

    #: Shown with their secrets masked (passwords in URLs and option dicts) by ``repr``.
    values: Mapping[str, Any] = attrs.field(factory=dict, repr=redacted_repr)
    #: Names set in the configuration (not defaults or fallbacks).
    explicit: frozenset[str] = frozenset()
    #: Which key each value was read from: the name, an alias, or a fallback such as broker_url.
    sources: Mapping[str, str] = attrs.field(factory=dict)
    registry: SettingRegistry | None = attrs.field(default=None, eq=False, repr=False)
    conf: Any = attrs.field(default=None, eq=False, repr=False)
    _late: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @classmethod
    def of(cls, **values: Any) -> Settings:
        """Settings holding exactly ``values``, all counted as set (for tests and for code that
        builds a config by hand)."""
        return cls(values=values, explicit=frozenset(values), sources={k: k for k in values})

    def __getitem__(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in self._late:
            return self._late[name]
        if self.registry is None or self.conf is None or name not in self.registry:
            raise KeyError(name)
        value = self.registry.read_late(self.conf, name, self._late)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def is_set(self, name: str) -> bool:
        """Whether the configuration sets ``name`` (or one of its aliases)."""
        return name in self.explicit

    def warn_fallbacks(self, unused: Collection[str] = ()) -> None:
        """Warn about each value read from a deprecated fallback (``broker_url``, ...), once
        the runtime knows which it uses: a value in ``unused`` was read but is not (the broker
        URL when a backend serves a client the user assigned), so nothing falls back."""
        if self.registry is None:
            return
        for name, source in self.sources.items():
            if name in unused or name not in self.registry:
                continue
            setting = self.registry[name]
            if not setting.fallback_warning or source != setting.fallback:
                continue
            names = " or ".join([name, *self.registry.aliases_of(name)])
            message = setting.fallback_warning.format(names=names)
            # DeprecationWarning is silenced by default and beat usually runs as a daemon: log.
            warnings.warn(message, DeprecationWarning, stacklevel=4)
            logger.warning(message)

    def source(self, name: str) -> str:
        """The key a value came from (an alias or a fallback), for error messages."""
        return self.sources.get(name, name)

    def by_attribute(self, attribute: str) -> Any:
        """The value that celery-redbeat code reads as ``RedBeatConfig.<attribute>``."""
        if self.registry is not None:
            for setting in self.registry:
                if setting.attribute == attribute:
                    return self.get(setting.alias_of or setting.name)
        raise KeyError(attribute)


# --------------------------------------------------------------------------- parsers


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def seconds(
    *, allow_zero: bool = False, maximum: float | None = None, forever: float | None = None
) -> Parser:
    """A number of seconds: > 0 (>= 0 with ``allow_zero``), at most ``maximum``, never NaN;
    ``forever`` is one more accepted value (celery-redbeat's -1)."""
    low = ">= 0" if allow_zero else "> 0"
    accepted = f"a number of seconds {low}"
    if maximum is not None:
        accepted = f"a number of seconds from {0 if allow_zero else 'above 0'} to {maximum:g}"
    if forever is not None:
        accepted += f", or {forever:g} for no limit"

    def parse(value: Any) -> float:
        if forever is not None and _is_number(value) and value == forever:
            return float(value)
        if not _is_number(value) or math.isnan(value):
            raise InvalidValue(accepted)
        number = float(value)
        if number < 0 or (number == 0 and not allow_zero):
            raise InvalidValue(accepted)
        if maximum is not None and number > maximum:
            raise InvalidValue(accepted)
        return number

    return parse


def integer(*, minimum: int, meaning: str = "") -> Parser:
    """An integer (not a bool) >= ``minimum``."""
    accepted = f"an integer >= {minimum}" + (f" ({meaning})" if meaning else "")

    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidValue(accepted)
        return value

    return parse


def boolean(value: Any) -> bool:
    """True or False (not 1, not "yes")."""
    if not isinstance(value, bool):
        raise InvalidValue("True or False")
    return value


def choice(*options: str) -> Parser:
    """One of ``options``."""

    def parse(value: Any) -> str:
        if value not in options:
            raise InvalidValue(" or ".join(options))
        return str(value)

    return parse


def text(example: str) -> Parser:
    """A non-empty string; ``example`` is shown in the error."""

    def parse(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise InvalidValue(f"a non-empty string such as {example!r}")
        return value

    return parse


def mapping(what: str) -> Parser:
    """A dict (any mapping, copied); ``what`` says what it holds."""

    def parse(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise InvalidValue(f"a dict of {what}")
        return dict(value)

    return parse


def import_paths(value: Any) -> tuple[str, ...]:
    """A list of import paths, or one string of comma-separated paths."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
        raise InvalidValue("a list of import paths such as ['mypkg.plugin']")
    return tuple(value)


def optional(parse: Parser) -> Parser:
    """``parse``, with ``None`` accepted as it is."""

    def parse_optional(value: Any) -> Any:
        return None if value is None else parse(value)

    return parse_optional
