"""Scheduling policies: what an entry does when runs were missed, how late a run may start,
how much it is spread, and when its schedule begins and ends.

Celery beat has one behaviour for all of these; RedBeat keeps it as the default and lets each
entry choose (its ``policy`` field, :class:`~redbeat_core.model.EntryPolicy`), with app-wide
defaults declared as settings by :mod:`redbeat_core.policies`. Everything here is pure: the
tick's planning, an entry's next due time and the ``show``/``next`` views all ask these
functions, so they agree.

- **misfire**: ``run_once`` (Celery: however many due times passed, one run, now), ``skip`` (a
  run later than ``redbeat_misfire_grace`` is dropped and the entry moves to its next future
  due time) or ``run_all`` (one run per missed due time, oldest first, each carrying its due
  time; at most ``redbeat_misfire_limit`` per catch-up, the older ones are skipped).
- **starting_deadline**: a run that would start more than this after its due time is skipped
  (Kubernetes' ``startingDeadlineSeconds``), whatever the misfire policy.
- **jitter**: each run is delayed by up to this many seconds, by an amount that is a function
  of the entry's name and the due time: every beat computes the same delay (a failover does not
  re-roll it) and the stored next run is the real one.
- **overlap**: ``allow`` (Celery: a run is published whatever its previous run is doing),
  ``skip`` (not while the previous run is queued or running) or ``buffer_one`` (at most one
  queued behind the running one); the workers say what runs (:mod:`redbeat_core.running`).
- **blackouts**: named calendars (:mod:`redbeat_core.blackouts`) in which the entry's runs
  are skipped or postponed to the blackout's end (``blackout_action``).
- **start_at / end_at / max_runs**: the schedule's bounds. Nothing runs before ``start_at``; a
  run due after ``end_at``, or once ``max_runs`` runs happened, finishes the entry: it leaves
  the schedule and is listed as finished.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

import attrs

from redbeat_core.model import EntryPolicy

__all__ = [
    "BLACKOUT_ACTIONS",
    "MISFIRE_POLICIES",
    "OVERLAP_POLICIES",
    "Misfire",
    "Overlap",
    "PolicyDefaults",
    "Resolved",
    "finish_reason",
    "jitter_offset",
    "policy_problem",
    "resolve",
    "to_unix",
]

Misfire = Literal["run_once", "skip", "run_all"]
MISFIRE_POLICIES: Final[tuple[Misfire, ...]] = ("run_once", "skip", "run_all")
Overlap = Literal["allow", "skip", "buffer_one"]
OVERLAP_POLICIES: Final[tuple[Overlap, ...]] = ("allow", "skip", "buffer_one")
BlackoutAction = Literal["skip", "postpone"]
BLACKOUT_ACTIONS: Final[tuple[BlackoutAction, ...]] = ("skip", "postpone")
#: A run this much after its due time is still on time for ``misfire="skip"``: a failover or a
#: restart is not an outage to skip runs over (Quartz's misfire threshold is 60 s too).
DEFAULT_MISFIRE_GRACE: Final = 60.0
#: Most runs ``misfire="run_all"`` publishes for one catch-up (the rest, older, are skipped).
DEFAULT_MISFIRE_LIMIT: Final = 100
#: Most due times one catch-up looks through (a one-second interval after a day away has 86,400;
#: only the newest ``redbeat_misfire_limit`` run, so the older ones are skipped by arithmetic for
#: intervals, and by this many steps for other schedules).
MAX_CATCH_UP_STEPS: Final = 10_000


@attrs.frozen
class PolicyDefaults:
    """The app-wide policy (the ``redbeat_misfire``, ``redbeat_starting_deadline``,
    ``redbeat_jitter``, ``redbeat_misfire_grace`` and ``redbeat_misfire_limit`` settings): what an
    entry without its own setting does."""

    misfire: Misfire = "run_once"
    starting_deadline: float | None = None
    jitter: float = 0.0
    misfire_grace: float = DEFAULT_MISFIRE_GRACE
    misfire_limit: int = DEFAULT_MISFIRE_LIMIT
    overlap: Overlap = "allow"
    blackouts: tuple[str, ...] = ()
    blackout_action: BlackoutAction = "skip"
    #: The blackout calendars by name (:mod:`redbeat_core.blackouts`).
    calendars: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def inert(self) -> bool:
        """Whether these defaults are Celery's behaviour (nothing to do for an entry without a
        policy of its own: the tick's fast path)."""
        return (
            self.misfire == "run_once"
            and self.starting_deadline is None
            and not self.jitter
            and self.overlap == "allow"
            and not self.blackouts
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | Any) -> PolicyDefaults:
        """The defaults from a config's settings (built-in values for any not declared, as when
        the ``redbeat.policies`` plugin is blocked)."""

        def get(name: str, default: Any) -> Any:
            try:
                value = settings[name]
            except KeyError:
                return default
            return default if value is None and default is not None else value

        return cls(
            misfire=get("redbeat_misfire", "run_once"),
            starting_deadline=get("redbeat_starting_deadline", None),
            jitter=float(get("redbeat_jitter", 0.0)),
            misfire_grace=float(get("redbeat_misfire_grace", DEFAULT_MISFIRE_GRACE)),
            misfire_limit=int(get("redbeat_misfire_limit", DEFAULT_MISFIRE_LIMIT)),
            overlap=get("redbeat_overlap", "allow"),
            blackouts=tuple(get("redbeat_blackouts", ()) or ()),
            blackout_action=get("redbeat_blackouts_action", "skip"),
            calendars=dict(get("redbeat_calendars", {}) or {}),
        )


@attrs.frozen
class Resolved:
    """One entry's policy: its own settings over the app's defaults."""

    misfire: Misfire = "run_once"
    starting_deadline: float | None = None
    jitter: float = 0.0
    start_at: float | None = None
    end_at: float | None = None
    max_runs: int | None = None
    misfire_grace: float = DEFAULT_MISFIRE_GRACE
    misfire_limit: int = DEFAULT_MISFIRE_LIMIT
    overlap: Overlap = "allow"
    blackouts: tuple[str, ...] = ()
    blackout_action: BlackoutAction = "skip"

    @property
    def bounded(self) -> bool:
        return self.start_at is not None or self.end_at is not None or self.max_runs is not None

    @property
    def celerys(self) -> bool:
        """Whether this is Celery's behaviour: nothing for the tick to apply."""
        return (
            self.misfire == "run_once"
            and self.overlap == "allow"
            and not self.blackouts
            and self.starting_deadline is None
            and not self.jitter
            and not self.bounded
        )


def resolve(policy: Any, defaults: PolicyDefaults) -> Resolved | None:
    """``policy`` (an :class:`~redbeat_core.model.EntryPolicy` or None) over ``defaults``;
    None when the result is Celery's behaviour, so the caller takes its fast path."""
    if policy is None:
        if defaults.inert:
            return None
        policy = _NO_POLICY
    resolved = Resolved(
        misfire=policy.misfire or defaults.misfire,
        starting_deadline=_own(policy.starting_deadline, defaults.starting_deadline),
        jitter=_own(policy.jitter, defaults.jitter),
        start_at=policy.start_at,
        end_at=policy.end_at,
        max_runs=policy.max_runs,
        misfire_grace=defaults.misfire_grace,
        misfire_limit=defaults.misfire_limit,
        overlap=policy.overlap or defaults.overlap,
        blackouts=_own(policy.blackouts, defaults.blackouts),
        blackout_action=policy.blackout_action or defaults.blackout_action,
    )
    return None if resolved.celerys else resolved


#: An entry that sets nothing: every field is the app's default.
_NO_POLICY: Final = EntryPolicy()


def _own(value: Any, default: Any) -> Any:
    """An entry's own setting, unless it has none (None; 0 and [] are settings)."""
    return default if value is None else value


def jitter_offset(name: str, due: float, jitter: float) -> float:
    """The delay, in [0, ``jitter``) seconds, of the run of ``name`` due at ``due`` (Unix
    seconds): a hash of both, so every beat, before and after a failover, computes the same."""
    if jitter <= 0:
        return 0.0
    token = f"{name}\0{round(due * 1000)}".encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(token, digest_size=8).digest()
    return jitter * (int.from_bytes(digest, "big") / 2.0**64)


def finish_reason(resolved: Resolved | None, *, due: float | None, runs: int) -> str | None:
    """Why the entry's schedule is over before a run due at ``due`` with ``runs`` runs done,
    or None while it goes on."""
    if resolved is None:
        return None
    if resolved.max_runs is not None and runs >= resolved.max_runs:
        return f"it ran {runs} times (max_runs={resolved.max_runs})"
    if resolved.end_at is not None and due is not None and due > resolved.end_at:
        return f"its next run would be after its end ({_utc(resolved.end_at)}, end_at)"
    return None


def to_unix(value: Any) -> float | None:
    """A bound (``start_at``/``end_at``) as Unix seconds: an aware datetime, a number of Unix
    seconds, or None. A naive datetime is refused (which zone would it be in?)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a datetime with a time zone (a naive one could be any zone)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("an aware datetime or Unix seconds")
    return float(value)


def policy_problem(field: str, value: Any) -> str | None:
    """What ``field`` of a policy accepts, when ``value`` is not it; None when it is (None
    always is: "not set")."""
    check = _CHECKS.get(field)
    if value is None or check is None or check[0](value):
        return None
    return check[1]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


#: Each policy field's test and what it accepts.
_CHECKS: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "misfire": (
        lambda v: v in MISFIRE_POLICIES,
        "one of " + ", ".join(repr(p) for p in MISFIRE_POLICIES) + ", or None (the default)",
    ),
    "starting_deadline": (
        lambda v: _number(v) and v > 0,
        "a finite number of seconds > 0, or None (the default)",
    ),
    "jitter": (
        lambda v: _number(v) and v >= 0,
        "a finite number of seconds >= 0, or None (the default)",
    ),
    "max_runs": (_whole, "a whole number >= 1, or None for no limit"),
    "overlap": (
        lambda v: v in OVERLAP_POLICIES,
        "one of " + ", ".join(repr(p) for p in OVERLAP_POLICIES) + ", or None (the default)",
    ),
    "blackouts": (
        lambda v: isinstance(v, list | tuple) and all(isinstance(n, str) and n for n in v),
        "a list of blackout calendar names (redbeat_calendars), [] for none, or None "
        "(the default: redbeat_blackouts)",
    ),
    "blackout_action": (
        lambda v: v in BLACKOUT_ACTIONS,
        "'skip' or 'postpone' (to the end of the blackout), or None (the default)",
    ),
    "start_at": (_number, "an aware datetime or Unix seconds, or None for no bound"),
    "end_at": (_number, "an aware datetime or Unix seconds, or None for no bound"),
}


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
