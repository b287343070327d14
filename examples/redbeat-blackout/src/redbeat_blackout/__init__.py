"""Blackout windows for RedBeat: runs of chosen entries are skipped, or postponed to the
window's end, at set hours of the day.

An example of a plugin that decides about due runs (hook ``redbeat_decide_runs``) and declares
its own settings (hook ``redbeat_register_settings``). It is off until
``redbeat_blackout_windows`` is set.
"""

from redbeat_blackout.policy import Action, Blackout
from redbeat_blackout.settings import (
    ACTION,
    ENTRIES,
    OWNER,
    SETTINGS,
    TIMEZONE,
    WINDOWS,
    parse_entries,
    parse_timezone,
    parse_windows,
)
from redbeat_blackout.windows import (
    DAY,
    Window,
    blackout_end,
    covers_whole_day,
    parse_window,
    window_at,
)

__all__ = [
    "ACTION",
    "DAY",
    "ENTRIES",
    "OWNER",
    "SETTINGS",
    "TIMEZONE",
    "WINDOWS",
    "Action",
    "Blackout",
    "Window",
    "blackout_end",
    "covers_whole_day",
    "parse_entries",
    "parse_timezone",
    "parse_window",
    "parse_windows",
    "window_at",
]
__version__ = "0.1.0"
