"""What ``redbeat apply`` would do: the difference between a file and the stored schedule.

:func:`make_plan` is pure (no storage, no clock): the command reads the file and the stored
entries, and prints and carries out what this returns, so ``--dry-run`` shows exactly what a
real run writes. Entries are compared field by field on what they mean, not on how they were
written: ``cron = "0 3 * * *"`` matches a crontab stored as ``crontab(hour=3, minute=0)``, and
``every = 60`` matches ``60.0``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from celery.schedules import crontab
from celery.schedules import schedule as interval

from redbeat.apply.source import Wanted
from redbeat_core.catalog import EntryInfo, EntryState
from redbeat_core.schedules import clocked
from redbeat_core.words import describe_schedule

__all__ = ["Change", "FieldChange", "Plan", "make_plan", "same_schedule"]

#: The fields a file sets, in the order changes are shown.
COMPARED: Final = ("task", "schedule", "args", "kwargs", "options", "enabled", "policy")
_CRONTAB_FIELDS: Final = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
#: Entries a beat adds at every start besides ``beat_schedule`` (Celery's nightly result
#: cleanup, when results expire): not recorded as statics, yet ``--prune`` must keep them as it
#: keeps statics, or results would pile up until the next beat start.
BUILT_IN: Final = frozenset({"celery.backend_cleanup"})


@dataclass(frozen=True)
class FieldChange:
    """One field of a stored entry that the file changes, as people read it (the schedule in
    words, arguments as JSON)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """A stored entry the file changes; its run count, last run and pause are kept."""

    wanted: Wanted
    fields: tuple[FieldChange, ...]
    #: The stored definition cannot be read: the file's replaces it whole.
    unreadable: bool = False
    #: Quarantined by the beat: writing it again puts it back in the schedule.
    quarantined: bool = False
    #: Paused by an operator: it stays paused.
    paused: bool = False
    #: From ``beat_schedule``: the next beat start puts the app's definition back.
    static: bool = False

    @property
    def name(self) -> str:
        return self.wanted.name


@dataclass(frozen=True)
class Plan:
    """What applying a file does, entry by entry (each list by name)."""

    add: tuple[Wanted, ...]
    change: tuple[Change, ...]
    unchanged: tuple[str, ...]
    #: Stored, not in the file, removed (``--prune``).
    remove: tuple[str, ...]
    #: Stored, not in the file, kept: no ``--prune``.
    left_alone: tuple[str, ...]
    #: Stored, not in the file, from ``beat_schedule`` (or Celery's own, :data:`BUILT_IN`):
    #: ``--prune`` never removes them (the next beat start would put them back).
    static_kept: tuple[str, ...]

    @property
    def writes(self) -> bool:
        """Whether carrying it out writes anything."""
        return bool(self.add or self.change or self.remove)

    def to_json(self) -> dict[str, Any]:
        """The plan as ``--json`` prints it."""
        return {
            "add": [_wanted_json(wanted) for wanted in self.add],
            "change": [
                {
                    "name": change.name,
                    "fields": {
                        item.field: {"from": item.before, "to": item.after}
                        for item in change.fields
                    },
                    "quarantined": change.quarantined,
                    "paused": change.paused,
                    "static": change.static,
                }
                for change in self.change
            ],
            "unchanged": list(self.unchanged),
            "remove": list(self.remove),
            "left_alone": list(self.left_alone),
            "static_kept": list(self.static_kept),
        }


def make_plan(wanted: Mapping[str, Wanted], stored: Iterable[EntryInfo], *, prune: bool) -> Plan:
    """Compare the file's entries (``wanted``) with the stored ones. Stored entries the file
    does not name are left alone, or removed with ``prune`` unless they are static (or
    Celery's own)."""
    found = {info.name: info for info in stored}
    add: list[Wanted] = []
    change: list[Change] = []
    unchanged: list[str] = []
    for name in sorted(wanted):
        entry = wanted[name]
        info = found.get(name)
        if info is None:
            add.append(entry)
            continue
        differs = _compare(entry, info)
        quarantined = info.state is EntryState.QUARANTINED
        if differs or quarantined:
            change.append(
                Change(
                    entry,
                    differs,
                    unreadable=info.task is None,
                    quarantined=quarantined,
                    paused=info.state is EntryState.PAUSED,
                    static=info.static,
                )
            )
        else:
            unchanged.append(name)
    others = sorted(name for name in found if name not in wanted)
    kept = [name for name in others if found[name].static or name in BUILT_IN]
    return Plan(
        add=tuple(add),
        change=tuple(change),
        unchanged=tuple(unchanged),
        remove=tuple(name for name in others if prune and name not in kept),
        left_alone=() if prune else tuple(others),
        static_kept=tuple(kept) if prune else (),
    )


def _compare(entry: Wanted, info: EntryInfo) -> tuple[FieldChange, ...]:
    """The fields of ``info`` that differ from the file's ``entry``, as people read them;
    every field (from None) when the stored definition cannot be read."""
    after = {
        "task": entry.task,
        "schedule": describe_schedule(entry.schedule),
        "args": _plain(entry.args),
        "kwargs": _plain(entry.kwargs),
        "options": _plain(entry.options),
        "enabled": entry.enabled,
        "policy": _plain_policy(entry.policy),
    }
    if info.task is None:  # before: None, "cannot be read"
        return tuple(FieldChange(field, None, after[field]) for field in COMPARED)
    differs: list[FieldChange] = []
    if info.task != entry.task:
        differs.append(FieldChange("task", info.task, entry.task))
    if not same_schedule(info.schedule, entry.schedule):
        differs.append(FieldChange("schedule", info.schedule_text, after["schedule"]))
    for field, before, wanted in (
        ("args", list(info.args), entry.args),
        ("kwargs", dict(info.kwargs), entry.kwargs),
        ("options", dict(info.options), entry.options),
        ("enabled", info.enabled, entry.enabled),
    ):
        if before != wanted:
            differs.append(FieldChange(field, _plain(before), after[field]))
    if _plain_policy(info.policy) != after["policy"]:
        differs.append(FieldChange("policy", _plain_policy(info.policy), after["policy"]))
    return tuple(differs)


def _plain_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A policy as people read it and as two policies compare: the fields set, numbers as
    floats where the store keeps them so, times as ISO 8601 in UTC."""
    plain: dict[str, Any] = {}
    for field, value in policy.items():
        if value is None:
            continue
        shown = value
        if isinstance(value, datetime):
            shown = value.astimezone(UTC).isoformat()
        elif field in {"starting_deadline", "jitter"} and isinstance(value, int | float):
            shown = float(value)
        plain[field] = shown
    return plain


def same_schedule(stored: Any, wanted: Any) -> bool:
    """Whether two schedules run at the same times: intervals of the same length (and
    ``relative``), crontabs of the same expanded fields, one-offs at the same instant.
    Schedules of different types never match (a file cannot spell an rrule or a solar)."""
    if type(stored) is not type(wanted):
        return False
    if isinstance(stored, crontab):
        zones_match = getattr(stored, "zone", None) == getattr(wanted, "zone", None)
        return zones_match and all(
            getattr(stored, f) == getattr(wanted, f) for f in _CRONTAB_FIELDS
        )
    if isinstance(stored, interval):
        return bool(stored.run_every == wanted.run_every and stored.relative == wanted.relative)
    if isinstance(stored, clocked):
        return bool(stored.clocked_time == wanted.clocked_time)
    return False


def _wanted_json(entry: Wanted) -> dict[str, Any]:
    return {
        "name": entry.name,
        "task": entry.task,
        "schedule": describe_schedule(entry.schedule),
        "args": _plain(entry.args),
        "kwargs": _plain(entry.kwargs),
        "options": _plain(entry.options),
        "enabled": entry.enabled,
        "policy": _plain_policy(entry.policy),
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (a time from a TOML file as its ISO text)."""
    return json.loads(json.dumps(value, default=str))
