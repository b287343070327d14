"""Carrying out a :class:`~redbeat.apply.plan.Plan` through ``redbeat.Schedule``.

Every write goes through the public API, so each entry is checked as the beat checks it and
the ``redbeat_entry_saved`` and ``redbeat_entry_deleted`` hooks fire as for ``redbeat add``
and ``delete``. A changed entry is updated field by field (``Schedule.update``), which keeps
its run count, its last run and its pause; only a definition that cannot be read is replaced
whole (its runs are still kept).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from redbeat.apply.plan import Change, Plan
from redbeat.apply.source import Wanted
from redbeat_core.audit import audit_action
from redbeat_core.catalog import EntryNotFoundError, Schedule
from redbeat_core.model import POLICY_FIELDS

__all__ = ["carry_out", "check_entries"]


def check_entries(api: Schedule, wanted: Mapping[str, Wanted]) -> None:
    """Raise ``InvalidEntryError`` for the first entry RedBeat would refuse to store, before
    anything is written (a file is applied whole or not at all)."""
    for entry in wanted.values():
        api.check(entry.name, entry.task, entry.schedule, **_fields(entry))


def carry_out(api: Schedule, plan: Plan, *, source: str | None = None) -> None:
    """Write the plan: additions, then changes, then removals (``--prune``). The audit log
    records each as part of applying ``source`` (``apply: add``, ``apply: update``...)."""
    with audit_action("apply", f"from {source}" if source else None):
        for entry in plan.add:
            _store(api, entry, replace=False)
        for change in plan.change:
            _change(api, change)
        for name in plan.remove:
            with contextlib.suppress(EntryNotFoundError):  # deleted meanwhile: as planned
                api.delete(name)


def _change(api: Schedule, change: Change) -> None:
    if change.unreadable:
        _store(api, change.wanted, replace=True)
        return
    fields: dict[str, Any] = {
        item.field: getattr(change.wanted, item.field) for item in change.fields
    }
    if "policy" in fields:
        fields["policy"] = whole_policy(change.wanted)
    if fields:
        api.update(change.name, **fields)
    else:  # quarantined, yet as the file wants it: stored again, out of the quarantine
        api.restore(change.name)


def _store(api: Schedule, entry: Wanted, *, replace: bool) -> None:
    api.add(entry.name, entry.task, entry.schedule, replace=replace, **_fields(entry))


def _fields(entry: Wanted) -> dict[str, Any]:
    """What ``Schedule.add`` and ``Schedule.check`` take of a file's entry besides its name,
    task and schedule: one list, so a check and the write it guards see the same entry."""
    return {
        "args": entry.args,
        "kwargs": entry.kwargs,
        "options": entry.options,
        "enabled": entry.enabled,
        "policy": whole_policy(entry),
    }


def whole_policy(entry: Wanted) -> dict[str, Any]:
    """The file's policy with every field it leaves out set to None (the app's default): a
    file says the whole policy, so a field removed from it is reset."""
    return {field: entry.policy.get(field) for field in POLICY_FIELDS}
