"""The plugin's settings, declared to RedBeat through ``redbeat_register_settings``.

RedBeat reads them with its own (lower or upper case), runs each value through its parser once
at start-up, and stops the beat on a bad one with the setting's name, what is accepted and this
plugin's name; a misspelled ``redbeat_blackout_*`` key is warned about with the closest name.
So the plugin never checks a value at run time: what it reads from ``config.settings`` is
already a tuple of :class:`~redbeat_blackout.windows.Window`, a tuple of globs, a time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redbeat_blackout.windows import Window, covers_whole_day, parse_window
from redbeat_core import ConfigurationError, InvalidValue, RedBeatConfig, Setting, SettingRegistry
from redbeat_core.settings import choice

OWNER: Final = "redbeat-blackout"
WINDOWS: Final = "redbeat_blackout_windows"
ENTRIES: Final = "redbeat_blackout_entries"
ACTION: Final = "redbeat_blackout_action"
TIMEZONE: Final = "redbeat_blackout_timezone"


def _items(value: Any) -> list[str] | None:
    """A list of strings, or one string of comma-separated items (the form an environment
    variable gives); None when ``value`` is neither."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value]
    return None


def parse_windows(value: Any) -> tuple[Window, ...]:
    """Daily windows, ``["22:00-06:00", "12:00-12:30"]`` or ``"22:00-06:00, 12:00-12:30"``."""
    accepted = (
        "a list of daily windows 'start-end' such as ['22:00-06:00'] (times HH:MM or HH:MM:SS; "
        "a start after the end crosses midnight; 24:00 ends at midnight)"
    )
    items = _items(value)
    if items is None:
        raise InvalidValue(accepted)
    try:
        return tuple(parse_window(item) for item in items)
    except ValueError as exc:
        raise InvalidValue(f"{accepted}: {exc}") from None


def parse_entries(value: Any) -> tuple[str, ...]:
    """Globs of entry names, ``["maint-*", "reindex-?"]`` or ``"maint-*, reindex-?"``."""
    items = _items(value)
    if items is None or not all(items):
        raise InvalidValue("a list of globs of entry names such as ['maint-*'] ('*' for all)")
    return tuple(items)


def parse_timezone(value: Any) -> tzinfo:
    """An IANA time zone name (``"Europe/Paris"``), or a ``tzinfo`` as it is."""
    if isinstance(value, tzinfo):
        return value
    accepted = "an IANA time zone name such as 'UTC' or 'Europe/Paris'"
    if not isinstance(value, str):
        raise InvalidValue(accepted)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValue(f"{accepted} ({value!r} is not in the time zone database)") from None


SETTINGS: Final = (
    Setting(
        WINDOWS,
        "list[str]",
        (),
        "Daily blackout windows 'start-end' in redbeat_blackout_timezone, e.g. "
        "['22:00-06:00']. Empty: the plugin does nothing.",
        parse=parse_windows,
        default_doc="[]",
    ),
    Setting(
        ENTRIES,
        "list[str]",
        (),
        "Globs of the entry names blacked out, e.g. ['maint-*']; '*' for every entry. "
        "Required with redbeat_blackout_windows.",
        parse=parse_entries,
        default_doc="[]",
    ),
    Setting(
        ACTION,
        "str",
        "skip",
        "What happens to a run due in a window: 'skip' (it does not run; the entry moves on "
        "to its next due time) or 'postpone' (it runs once when the blackout ends).",
        parse=choice("skip", "postpone"),
    ),
    Setting(
        TIMEZONE,
        "str",
        UTC,
        "Time zone of the windows (IANA name).",
        parse=parse_timezone,
        default_doc="Celery's timezone, else 'UTC'",
        fallback="timezone",
    ),
)


def check_windows_have_entries(config: RedBeatConfig) -> None:
    """Windows without entries would black out nothing, silently: ask which entries (a
    blackout of every entry must be asked for with '*', never fall out of a default)."""
    settings = config.settings
    if settings.get(WINDOWS) and not settings.get(ENTRIES):
        raise ConfigurationError(
            ENTRIES,
            list(settings.get(ENTRIES) or ()),
            f"{WINDOWS} is set, so name the entries it blacks out, e.g. ['maint-*'] "
            "('*' for every entry)",
        )


def check_postpone_can_end(config: RedBeatConfig) -> None:
    """A postponed run waits for the blackout's end: windows that cover the whole day have
    none, and the run would wait forever."""
    settings = config.settings
    windows = settings.get(WINDOWS) or ()
    if settings.get(ACTION) == "postpone" and covers_whole_day(windows):
        raise ConfigurationError(
            WINDOWS,
            [str(window) for window in windows],
            f"windows that leave a gap in the day: these cover all of it, so a run that "
            f"{ACTION}='postpone' holds back would never run (use 'skip', or leave a gap)",
        )


def register(registry: SettingRegistry) -> None:
    """Declare the settings and their checks (the plugin's ``redbeat_register_settings``)."""
    registry.add(*SETTINGS, owner=OWNER)
    registry.check(check_windows_have_entries, owner=OWNER)
    registry.check(check_postpone_can_end, owner=OWNER)
