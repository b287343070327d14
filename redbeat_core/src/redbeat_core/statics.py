"""The start-up sync of ``beat_schedule`` ("statics") into storage, in three round trips.

Read the previous statics and every static's stored entry, then write the new and the changed
ones (keeping each one's run history), delete the statics that left the configuration and
record the new set of names. A static stored exactly as configured and scheduled is left
alone, so a restart with an unchanged ``beat_schedule`` rewrites nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import attrs
from celery.schedules import crontab

from redbeat_core import records, validation
from redbeat_core.audit import record_change
from redbeat_core.budget import BudgetExceeded, PlanningBudget
from redbeat_core.entry import has_own_clock
from redbeat_core.exceptions import EntryDecodeError, InvalidEntryError
from redbeat_core.locks import beat_identity
from redbeat_core.model import EntryPolicy
from redbeat_core.schedules import clocked
from redbeat_core.typing import StoredEntry

if TYPE_CHECKING:
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.runtime import Runtime

logger = logging.getLogger("celery.beat")


def build_entry(
    entry_class: type[RedBeatSchedulerEntry],
    app: Any,
    name: str,
    fields: Any,
    *,
    now: datetime | None = None,
) -> RedBeatSchedulerEntry:
    """An entry from a ``beat_schedule``-style value (a dict of entry fields, or an entry).

    A new entry counts as run ``now`` (Celery's rule for statics); a one-off (``clocked``) or a
    schedule with a clock of its own gets Celery's default instead."""
    if isinstance(fields, entry_class):
        fields.app = app
        return fields
    if isinstance(fields, Mapping):
        values = dict(fields, name=name, app=app)
        schedule = values.get("schedule")
        if (
            now is not None
            and values.get("last_run_at") is None
            and not isinstance(schedule, clocked)
            and not has_own_clock(schedule)
        ):
            values["last_run_at"] = now
        return entry_class(**values)
    raise TypeError(f"expected a dict of entry fields, got {type(fields).__name__}")


def default_entries(app: Any, static: Mapping[str, Any]) -> dict[str, Any]:
    """Celery's built-in entries, as ``Scheduler.install_default_entries`` adds them: the
    nightly ``celery.backend_cleanup`` when results expire and the backend cannot expire them
    by itself."""
    conf = app.conf
    if "celery.backend_cleanup" in static or not conf.result_expires:
        return {}
    if app.backend.supports_autoexpire:
        return {}
    return {
        "celery.backend_cleanup": {
            "task": "celery.backend_cleanup",
            "schedule": crontab("0", "4", "*"),
            "options": {"expires": 12 * 3600},
        }
    }


def sync_statics(runtime: Runtime, entry_class: type[RedBeatSchedulerEntry]) -> None:
    """Sync the app's ``beat_schedule`` into storage in three round trips, whatever its size.

    A static that cannot be built or encoded is logged with its name and skipped; the others
    are stored."""
    app = runtime.app
    store = runtime.store
    static = dict(app.conf.beat_schedule or {})
    previous = store.statics()
    removed = sorted(previous - set(static))
    wanted = {**default_entries(app, static), **static}
    names = list(wanted)
    stored = store.load_many(names) if names else []
    # One instant for the whole sync: reading the app's clock twice per entry was a sixth of
    # the start-up with 10,000 statics.
    now = app.now()
    to_save: list[StoredEntry] = []
    unreadable: list[StoredEntry] = []
    unchanged = 0
    budget = PlanningBudget(runtime.config.entry_time_budget)
    with budget.planning():
        for name, current in zip(names, stored, strict=True):
            try:
                budget.start_entry()
                new, readable = _sync_one(runtime, entry_class, name, wanted[name], current, now)
                budget.end_entry()
            except (Exception, BudgetExceeded) as exc:
                budget.end_entry()
                if isinstance(exc, BudgetExceeded):
                    reason = f"computing its next run {exc} (redbeat_entry_time_budget)"
                elif isinstance(exc, InvalidEntryError):
                    reason = exc.reason  # the message without the name, logged just before
                else:
                    reason = str(exc)
                paused = _pause_refused(runtime, current, reason)
                logger.error(
                    "beat: cannot add static entry %r from beat_schedule: %s. Fix its "
                    "definition in beat_schedule; the other entries are stored.%s",
                    name,
                    reason,
                    " Its stored definition is paused until then, so it does not go on "
                    "running silently."
                    if paused is not None
                    else "",
                )
                if paused is not None:
                    to_save.append(paused)
                continue
            if new is None:
                unchanged += 1
                continue
            to_save.append(new)
            if not readable:
                unreadable.append(new)
    for name in removed:
        logger.info("beat: removing static entry %r: it left beat_schedule", name)
    store.replace_statics(to_save, removed, statics=sorted(static))
    for new in unreadable:  # saves keep a stored meta: overwrite the unreadable ones
        store.update_meta(new.name, new.meta or "", new.score)
    if to_save or removed:
        record_change(
            runtime,
            "sync beat_schedule",
            [new.name for new in to_save] + removed,
            by=f"beat {beat_identity()}",
            detail=f"{len(to_save)} saved, {len(removed)} removed",
        )
    logger.info(
        "beat: %d static entries synced (%d unchanged), %d removed",
        len(to_save) + unchanged,
        unchanged,
        len(removed),
    )


def _sync_one(
    runtime: Runtime,
    entry_class: type[RedBeatSchedulerEntry],
    name: str,
    fields: Any,
    current: StoredEntry | None,
    now: datetime,
) -> tuple[StoredEntry | None, bool]:
    """What to write for one static: (None, True) when it is stored exactly as configured,
    else its record and whether the stored meta was readable (its run history kept). Raises
    when the static cannot be built or encoded (``InvalidEntryError`` naming the field).

    The static is checked before it is compared with the stored one: a static that was stored
    unchanged by an earlier version is refused all the same."""
    entry = build_entry(entry_class, runtime.app, name, fields, now=now)
    validation.check_entry(entry, runtime.config)
    if current is not None:
        entry.policy = _keep_pause(runtime, entry.policy, current)
    if current is not None and _stored_as_is(runtime, entry, current):
        return None, True
    readable = True
    if current is not None and current.meta:
        readable = _keep_run_history(runtime, entry, current.meta)
    return records.encode_entry(entry, codec=runtime.codec, now=now), readable


#: Who paused a static whose new definition was refused (the pause ends once it is accepted).
REFUSED_BY: Final = "beat_schedule (definition refused)"


def _stored_policy(runtime: Runtime, current: StoredEntry) -> EntryPolicy | None:
    if not current.policy:
        return None
    try:
        return runtime.codec.decode_policy(current.policy, name=current.name)
    except EntryDecodeError:
        return None


def _pause_refused(
    runtime: Runtime, current: StoredEntry | None, reason: str
) -> StoredEntry | None:
    """The stored entry of a static whose new definition was refused, paused with the reason:
    otherwise its old definition would go on running as if nothing were wrong. None when there
    is no stored entry (nothing runs)."""
    if current is None or not current.definition:
        return None
    policy = _stored_policy(runtime, current) or EntryPolicy()
    paused = attrs.evolve(
        policy,
        paused_reason=f"its new definition in beat_schedule was refused: {reason}",
        paused_by=REFUSED_BY,
        paused_at=time.time(),
    )
    encoded = runtime.codec.encode_policy(paused)
    return StoredEntry(current.name, current.definition, current.meta, encoded, None)


def _keep_pause(
    runtime: Runtime, policy: EntryPolicy | None, current: StoredEntry
) -> EntryPolicy | None:
    """The policy to store for a static that was accepted: an operator's pause of the stored
    entry is kept (a restart must not resume it), a pause for a refused definition ends."""
    stored = _stored_policy(runtime, current)
    if stored is None or stored.paused_reason is None:
        return policy
    if stored.paused_by == REFUSED_BY:
        unpaused = attrs.evolve(stored, paused_reason=None, paused_by=None, paused_at=None)
        return policy if policy is not None else unpaused
    if policy is None:
        return None  # the stored policy, pause included, is kept as it is
    return attrs.evolve(
        policy,
        paused_reason=stored.paused_reason,
        paused_by=stored.paused_by,
        paused_at=stored.paused_at,
    )


def _stored_as_is(runtime: Runtime, entry: RedBeatSchedulerEntry, current: StoredEntry) -> bool:
    """Whether the static ``entry`` is stored exactly as configured and scheduled, so that
    writing it again would change nothing: same definition and policy, a due time, not
    quarantined (a quarantined entry has none)."""
    if current.score is None or current.definition is None:
        return False
    codec = runtime.codec
    if records.encode_definition(entry, codec) != current.definition:
        return False
    return entry.policy is None or records.encode_policy(entry, codec) == current.policy


def _keep_run_history(runtime: Runtime, entry: RedBeatSchedulerEntry, stored_meta: str) -> bool:
    """A redefined static keeps its last run (and so its next due time) across restarts.
    False when the stored meta is unreadable (the entry then starts afresh)."""
    try:
        meta = runtime.codec.decode_meta(stored_meta, name=entry.name)
    except EntryDecodeError:
        logger.warning("beat: stored meta of %r is unreadable; resetting it", entry.name)
        return False
    entry.last_run_at = meta.last_run_at
    entry.total_run_count = meta.total_run_count
    return True
