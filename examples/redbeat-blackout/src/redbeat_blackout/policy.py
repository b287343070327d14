"""The blackout an app asked for, and the decision it makes about a tick's due runs.

:class:`Blackout` is a value built from the checked settings; :meth:`Blackout.decide` marks
the runs that fall in a window through RedBeat's :class:`~redbeat_core.DueRuns`, reading no
clock (the tick's ``runs.now`` and each run's due time are the only times it uses), so it is
tested with explicit instants as well as through a real scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from fnmatch import fnmatchcase
from typing import Literal

from redbeat_blackout.settings import ACTION, ENTRIES, TIMEZONE, WINDOWS
from redbeat_blackout.windows import Window, blackout_end, window_at
from redbeat_core import DueRuns, Settings

__all__ = ["Action", "Blackout"]

Action = Literal["skip", "postpone"]


@dataclass(frozen=True)
class Blackout:
    """Which entries are blacked out, when, and what happens to their runs then.

    :ivar windows: the daily windows; none means the plugin is off.
    :ivar entries: globs of entry names (``fnmatch``, case-sensitive: entry names are).
    :ivar action: ``"skip"`` or ``"postpone"`` (to the end of the blackout).
    :ivar zone: the time zone the windows are written in.
    """

    windows: tuple[Window, ...] = ()
    entries: tuple[str, ...] = ()
    action: Action = "skip"
    zone: tzinfo = UTC

    @classmethod
    def from_settings(cls, settings: Settings) -> Blackout:
        """The blackout the app's settings describe (``config.settings``: already checked, so
        each value is the parsed one)."""
        return cls(
            windows=tuple(settings.get(WINDOWS) or ()),
            entries=tuple(settings.get(ENTRIES) or ()),
            action="postpone" if settings.get(ACTION) == "postpone" else "skip",
            zone=settings.get(TIMEZONE) or UTC,
        )

    @property
    def enabled(self) -> bool:
        """Off unless a window is configured: installing the plugin alone changes nothing."""
        return bool(self.windows) and bool(self.entries)

    def glob_for(self, name: str) -> str | None:
        """The first glob that matches the entry ``name``, or None."""
        return next((glob for glob in self.entries if fnmatchcase(name, glob)), None)

    def decide(self, runs: DueRuns) -> None:
        """Skip or postpone every run of a matching entry that would be published inside a
        window.

        A run is judged at the moment it would be published: its due time, or the tick's
        ``now`` when it is overdue (a beat that was down, a run postponed by another plugin).
        An overdue run from before the window must not go out in the middle of it.
        """
        for run in runs:
            glob = self.glob_for(run.name)
            if glob is None:
                continue
            at = max(runs.now, run.due_at)
            window = window_at(self.windows, at, self.zone)
            if window is None:
                continue
            reason = f"blackout window {window} ({self.zone}), entries {glob!r}"
            if self.action == "skip":
                runs.skip(run, reason)
            else:
                until = blackout_end(self.windows, at, self.zone)
                runs.postpone(run, until, f"{reason}; runs at {self._wall(until)}")

    def _wall(self, instant: float) -> str:
        return datetime.fromtimestamp(instant, self.zone).isoformat(sep=" ", timespec="seconds")

    def describe(self) -> str:
        """One line for the log at start-up."""
        windows = ", ".join(map(str, self.windows))
        return f"{self.action} runs of {', '.join(self.entries)} during {windows} ({self.zone})"
