"""``Schedule``: the stored schedule as operators and tools see it, on any backend.

celery-redbeat never had a way to list its entries (users were told to run ``ZRANGE`` on the
sorted set, and disabled entries were not even there). This is that way: list and filter the
entries with their state and next run, look one up, preview its next runs, add, change,
enable, disable and delete entries, read and restore the quarantine, and export or import the
whole schedule as JSON. The ``redbeat`` command and the dashboard are thin layers over it.

Every write goes through :class:`~redbeat_core.entry.RedBeatSchedulerEntry`, so it is checked
as the beat checks it (a bad value is refused with the entry's name and what is accepted),
stored as celery-redbeat stores it, and fires the ``redbeat_entry_saved`` and
``redbeat_entry_deleted`` hooks.
"""

from __future__ import annotations

import builtins
import enum
import fnmatch
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs
from celery.app import app_or_default

from redbeat_core import validation
from redbeat_core.audit import (
    AuditRecord,
    AuditStore,
    audit_action,
    decode_audit,
    operator,
    record_change,
)
from redbeat_core.blackouts import CalendarStore, calendar_json, parse_stored
from redbeat_core.entry import (
    RedBeatSchedulerEntry,
    has_own_clock,
    schedule_at,
    shift,
    unix_to_score,
)
from redbeat_core.exceptions import EntryDecodeError, InvalidEntryError, RedBeatError
from redbeat_core.history import HistoryStore, RunRecord, decode_records
from redbeat_core.locks import LockStatus
from redbeat_core.manual import RunRequestStore
from redbeat_core.model import POLICY_FIELDS, EntryPolicy
from redbeat_core.policy import Resolved, finish_reason, jitter_offset
from redbeat_core.runtime import Runtime, get_runtime
from redbeat_core.typing import StoredEntry
from redbeat_core.words import describe_schedule

__all__ = ["CalendarInfo", "EntryInfo", "EntryNotFoundError", "EntryState", "Schedule"]

#: Fields ``Schedule.update`` changes (the entry's definition; its runs are the beat's).
UPDATABLE: Final = ("task", "schedule", "args", "kwargs", "options", "enabled", "policy")
#: How many names are loaded per round trip while listing.
PAGE: Final = 500
#: How many entries ``import_`` writes per round trip: one write of a whole big file would hold
#: the storage (a store's write is atomic, so others wait on it) for as long as it takes.
CHUNK: Final = 1000


class EntryState(enum.StrEnum):
    """Where an entry stands, as ``list`` filters and shows it."""

    #: In the schedule: the beat runs it at its next due time.
    SCHEDULED = "scheduled"
    #: ``enabled=False``: kept, out of the schedule until enabled again.
    DISABLED = "disabled"
    #: Paused by an operator (``Schedule.pause``), with a reason: out of the schedule until
    #: resumed.
    PAUSED = "paused"
    #: Its schedule has no further run (a one-off that ran, a bounded rrule): kept, not run.
    FINISHED = "finished"
    #: The beat could not run it (undecodable, a schedule it refuses): set aside with a reason.
    QUARANTINED = "quarantined"


class EntryNotFoundError(RedBeatError, KeyError):
    """No entry of that name is stored (a ``KeyError``, as ``from_key`` raises)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no entry named {self.name!r} is stored"


@attrs.frozen
class EntryInfo:
    """One entry as listed: what it runs, when, and where it stands."""

    name: str
    #: The storage key (``prefix + name``), what ``RedBeatSchedulerEntry.from_key`` takes.
    key: str
    state: EntryState
    #: The task name; None when the stored definition cannot be read.
    task: str | None
    #: The Celery schedule object; None when it cannot be read.
    schedule: Any
    #: The schedule in words (``every 30 seconds``), or why it cannot be read.
    schedule_text: str
    #: When the beat runs it next (UTC); None unless scheduled.
    next_run: datetime | None
    last_run_at: datetime | None
    total_run_count: int
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    options: Mapping[str, Any] = attrs.field(factory=dict)
    enabled: bool = True
    #: Why it is quarantined or paused; None otherwise.
    reason: str | None = None
    #: Who paused it, and when (UTC); None unless paused.
    paused_by: str | None = None
    paused_at: datetime | None = None
    #: Whether it came from ``beat_schedule`` (the beat re-creates it at start-up).
    static: bool = False
    #: The entry's own scheduling policy: the fields it sets (see :mod:`redbeat_core.policy`;
    #: ``start_at``/``end_at`` as UTC datetimes). Empty: the app-wide defaults.
    policy: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 strings in UTC)."""
        return {
            "name": self.name,
            "key": self.key,
            "state": self.state.value,
            "task": self.task,
            "schedule": self.schedule_text,
            "next_run": _iso(self.next_run),
            "last_run_at": _iso(self.last_run_at),
            "total_run_count": self.total_run_count,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "options": dict(self.options),
            "enabled": self.enabled,
            "reason": self.reason,
            "paused_by": self.paused_by,
            "paused_at": _iso(self.paused_at),
            "static": self.static,
            "policy": {
                k: _iso(v) if isinstance(v, datetime) else v for k, v in self.policy.items()
            },
        }


@attrs.frozen
class CalendarInfo:
    """A blackout calendar (:mod:`redbeat_core.blackouts`): where it is declared, what it
    blacks out in words, and its spec."""

    name: str
    #: ``"settings"`` (``redbeat_calendars``) or ``"stored"`` (``Schedule.set_calendar``).
    source: str
    text: str
    spec: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        spec = json.loads(json.dumps(dict(self.spec), default=str))
        return {"name": self.name, "source": self.source, "text": self.text, "spec": spec}


class Schedule:
    """The schedule of a Celery app, in whatever storage its RedBeat settings name.

    Building one opens no connection; each call reads or writes the storage once or a few
    times (listing pages through it, :data:`PAGE` entries per round trip).
    """

    def __init__(self, app: Any = None) -> None:
        self.app = app_or_default(app)

    @property
    def _runtime(self) -> Runtime:
        return get_runtime(self.app)

    # ----------------------------------------------------------------- reading

    def names(self) -> builtins.list[str]:
        """Every stored entry's name, sorted: scheduled, disabled, finished and quarantined."""
        store = self._runtime.store
        lister = getattr(store, "names", None)
        if lister is not None:
            found: set[str] = set(lister())
        else:  # what a store without a full listing knows (not disabled or finished entries)
            found = {name for name, _ in store.scheduled()}
        found.update(store.quarantined())  # also a member whose entry key is gone
        return sorted(name for name in found if _names_an_entry(name, self._runtime.config))

    def entries(
        self,
        *,
        match: str = "*",
        task: str | None = None,
        state: EntryState | str | None = None,
    ) -> Iterator[EntryInfo]:
        """Every entry whose name matches the glob ``match`` (and ``task``, ``state`` when
        given), by name."""
        wanted = EntryState(state) if state is not None else None
        names = [name for name in self.names() if fnmatch.fnmatchcase(name, match)]
        for info in self._infos(names):
            if wanted is not None and info.state is not wanted:
                continue
            if task is not None and not fnmatch.fnmatchcase(info.task or "", task):
                continue
            yield info

    def infos(self, names: Sequence[str]) -> builtins.list[EntryInfo]:
        """The entries ``names`` in that order, loaded :data:`PAGE` per round trip; names no
        entry has (deleted meanwhile) are left out. For a caller that pages names itself (the
        dashboard keeps the listing of names and reads only the rows it shows)."""
        return builtins.list(self._infos(names))

    def scheduled_names(self, offset: int = 0, limit: int = 100) -> tuple[builtins.list[str], int]:
        """One page of the scheduled entries' names in due order (next run first), and how
        many are scheduled: the schedule's own order, so a page costs one read of that page
        (not of every name) on every store."""
        store = self._runtime.store
        page = store.scheduled(offset, offset + limit - 1) if limit > 0 else []
        return [name for name, _ in page], store.count()

    def _infos(self, names: Sequence[str]) -> Iterator[EntryInfo]:
        """The entries ``names``, loaded :data:`PAGE` at a time (gone ones left out)."""
        store = self._runtime.store
        quarantined = store.quarantined()
        statics = store.statics()
        for start in range(0, len(names), PAGE):
            page = names[start : start + PAGE]
            for name, stored in zip(page, store.load_many(page), strict=True):
                if stored is not None:  # else deleted meanwhile
                    yield self._info(stored, quarantined.get(name), name in statics)

    def list(
        self,
        *,
        match: str = "*",
        task: str | None = None,
        state: EntryState | str | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> builtins.list[EntryInfo]:
        """One page of :meth:`entries` (``limit=None``: all of them). Without a task or state
        filter only the page's entries are read."""
        if task is None and state is None:
            names = [name for name in self.names() if fnmatch.fnmatchcase(name, match)]
            end = None if limit is None else offset + limit
            return builtins.list(self._infos(names[offset:end]))
        found: builtins.list[EntryInfo] = []
        for index, info in enumerate(self.entries(match=match, task=task, state=state)):
            if index < offset:
                continue
            if limit is not None and len(found) >= limit:
                break
            found.append(info)
        return found

    def get(self, name: str) -> EntryInfo:
        """The entry ``name``; :class:`EntryNotFoundError` when none is stored."""
        return self._loaded(name)[1]

    def _loaded(self, name: str) -> tuple[StoredEntry, EntryInfo]:
        """The entry ``name`` as stored and as listed; :class:`EntryNotFoundError` when none
        is stored."""
        store = self._runtime.store
        stored = store.load(name)
        if stored is None:
            raise EntryNotFoundError(name)
        info = self._info(stored, store.quarantined().get(name), name in store.statics())
        return stored, info

    def next_runs(self, name: str, count: int = 10) -> builtins.list[datetime]:
        """The next ``count`` times the entry runs (UTC), from its stored next run on; fewer
        when its schedule ends, none when it is not scheduled."""
        stored, info = self._loaded(name)
        if info.state is not EntryState.SCHEDULED or info.next_run is None:
            return []
        entry = RedBeatSchedulerEntry.from_stored(stored, app=self.app, runtime=self._runtime)
        resolved = entry.resolved_policy()
        if resolved is None:
            return _preview(info.schedule, info.next_run, count)
        return _policy_preview(entry, resolved, info.next_run, count)

    def history(self, name: str | None = None, limit: int = 20) -> builtins.list[RunRecord]:
        """The newest ``limit`` run records, newest first: the entry ``name``'s, or the whole
        schedule's. Empty when the store keeps no history (:class:`HistoryStore`). With
        ``redbeat_history_per_entry`` at 0 an entry's records are found in the schedule's."""
        runtime = self._runtime
        store = runtime.store
        if not isinstance(store, HistoryStore):
            return []
        limits = runtime.config.history
        if name is None or limits.per_entry > 0:
            return decode_records(store.history(name, limit))
        found = decode_records(store.history(None, limits.total))
        return [record for record in found if record.name == name][:limit]

    @property
    def keeps_history(self) -> bool:
        """Whether this schedule's store records runs and the settings leave it on."""
        runtime = self._runtime
        return isinstance(runtime.store, HistoryStore) and runtime.config.history.enabled

    # ----------------------------------------------------------------- writing

    def add(
        self,
        name: str,
        task: str,
        schedule: Any,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        enabled: bool = True,
        replace: bool = False,
        policy: EntryPolicy | Mapping[str, Any] | None = None,
    ) -> EntryInfo:
        """Store a new entry (``schedule``: a Celery schedule, or seconds) with its scheduling
        ``policy`` (an :class:`EntryPolicy` or a dict of its fields; None: the app's defaults).
        An entry of that name already stored is refused unless ``replace`` (its run history is
        then kept)."""
        if not replace and self._runtime.store.load(name) is not None:
            raise InvalidEntryError(
                name, "name", name, "a name no entry has: pass replace=True to replace it"
            )
        entry = self._new_entry(name, task, schedule, args, kwargs, options, enabled, policy)
        with audit_action("replace" if replace else "add"):
            entry.save()
        return self.get(name)

    def check(
        self,
        name: str,
        task: str,
        schedule: Any,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        enabled: bool = True,
        policy: EntryPolicy | Mapping[str, Any] | None = None,
    ) -> None:
        """Raise ``InvalidEntryError`` (naming the field and what is accepted) for an entry
        :meth:`add` would refuse; write nothing. A tool that writes many entries checks them
        all first, so a bad one leaves the storage as it was."""
        self._new_entry(name, task, schedule, args, kwargs, options, enabled, policy).to_stored()

    def update(self, name: str, **changes: Any) -> EntryInfo:
        """Change fields of a stored entry (see :data:`UPDATABLE`); its runs are kept.
        ``policy`` is a dict of the policy fields to change (None puts one back to the app's
        default); the others, and a pause, are kept."""
        with audit_action("update", ", ".join(sorted(changes))):
            return self._update(name, changes)

    def _update(self, name: str, changes: dict[str, Any]) -> EntryInfo:
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise InvalidEntryError(
                name,
                unknown[0],
                changes[unknown[0]],
                f"one of the fields {', '.join(UPDATABLE)}",
            )
        entry = self._entry(name)
        if "schedule" in changes:  # the constructor converts numbers and timedeltas
            schedule = changes["schedule"]
            changes["schedule"] = RedBeatSchedulerEntry(name, entry.task, schedule, app=self.app)
            changes["schedule"] = changes["schedule"].schedule
        if "policy" in changes:
            changes["policy"] = _merge_policy(name, entry.policy, changes["policy"])
        for field, value in changes.items():
            setattr(entry, field, value)
        entry.save()
        return self.get(name)

    def set_policy(self, name: str, **fields: Any) -> EntryInfo:
        """Change the entry's scheduling policy fields (``misfire="skip"``, ``jitter=30``,
        ``end_at=datetime(...)``; None puts a field back to the app's default). See
        :mod:`redbeat_core.policy`."""
        with audit_action("policy", ", ".join(f"{k}={v!r}" for k, v in sorted(fields.items()))):
            return self._update(name, {"policy": fields})

    def enable(self, name: str) -> EntryInfo:
        """Put a disabled entry back in the schedule."""
        with audit_action("enable"):
            return self._update(name, {"enabled": True})

    def disable(self, name: str) -> EntryInfo:
        """Take an entry out of the schedule, keeping it (and its runs) stored."""
        with audit_action("disable"):
            return self._update(name, {"enabled": False})

    def pause(self, name: str, reason: str, by: str | None = None) -> EntryInfo:
        """Take the entry out of the schedule with a reason (and who paused it, default this
        user at this host): no beat runs it and it costs nothing per tick until
        :meth:`resume`. Its definition and runs are kept; pausing again replaces the reason."""
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidEntryError(name, "reason", reason, "a non-empty text saying why")
        entry = self._entry(name)
        entry.policy = attrs.evolve(
            entry.policy or EntryPolicy(),
            paused_reason=reason.strip(),
            paused_by=by or operator(),
            paused_at=time.time(),
        )
        with audit_action("pause", reason.strip()):
            entry.save()
        return self.get(name)

    def resume(self, name: str) -> EntryInfo:
        """Put a paused entry back in the schedule. Its next run is computed from its last
        run, as for any entry: a run missed while paused happens once, at once (Celery's
        catch-up)."""
        entry = self._entry(name)
        if not entry.paused:
            raise InvalidEntryError(name, "state", "not paused", "a paused entry to resume")
        assert entry.policy is not None
        entry.policy = attrs.evolve(
            entry.policy, paused_reason=None, paused_by=None, paused_at=None
        )
        with audit_action("resume"):
            entry.save()
        return self.get(name)

    def run_now(self, name: str, by: str | None = None) -> None:
        """Ask the leading beat to publish the entry once, at its next tick (a leader wakes at
        least every lock renewal, ``redbeat_lock_timeout`` / 3: 3.3 s by default), outside
        its schedule: its next run, last run and run count stay as they are. Recorded in the
        history as a manual run with who asked (default this user at this host). A second
        request before the first ran is one run. :class:`EntryNotFoundError` when no entry is
        stored; :class:`RedBeatError` when the storage takes no requests (see
        :mod:`redbeat_core.manual`)."""
        runtime = self._runtime
        store = runtime.store
        if store.load(name) is None:
            raise EntryNotFoundError(name)
        if not isinstance(store, RunRequestStore):
            raise RedBeatError(
                f"{type(store).__name__} takes no run-now requests (RunRequestStore); run the "
                f"task directly: app.send_task({self.get(name).task!r})"
            )
        asker = by or operator()
        store.request_run(name, asker, time.time())
        record_change(runtime, "run now", [name], by=asker)

    def delete(self, name: str) -> None:
        """Delete the entry; :class:`EntryNotFoundError` when none is stored."""
        runtime = self._runtime
        if runtime.store.load(name) is None:
            raise EntryNotFoundError(name)
        runtime.store.delete(validation.check_name(name, runtime.config))
        record_change(runtime, "delete", [name])
        runtime.plugins.entry_deleted(app=self.app, name=name)

    # ----------------------------------------------------------------- the quarantine

    def quarantine(self) -> dict[str, str]:
        """Quarantined entries: name -> the reason the beat gave."""
        return self._runtime.store.quarantined()

    def restore(self, name: str) -> EntryInfo:
        """Put a quarantined entry back in the schedule once it can run: it is read and saved
        again, which clears its quarantine record. Raises ``EntryDecodeError`` or
        ``InvalidEntryError`` (saying why) when it still cannot."""
        with audit_action("restore"):
            self._entry(name).save()
        return self.get(name)

    # ----------------------------------------------------------------- blackout calendars

    def calendars(self) -> builtins.list[CalendarInfo]:
        """Every blackout calendar, by name: the settings' and the stored ones."""
        runtime = self._runtime
        declared = runtime.config.settings.get("redbeat_calendars") or {}
        found = [
            CalendarInfo(name, "settings", calendar.describe(), calendar.spec)
            for name, calendar in declared.items()
        ]
        store = runtime.store
        if isinstance(store, CalendarStore):
            stored = store.stored_calendars()
            for name, calendar in parse_stored(stored).items():
                if name not in declared:
                    found.append(CalendarInfo(name, "stored", calendar.describe(), calendar.spec))
        return sorted(found, key=lambda info: info.name)

    def set_calendar(self, name: str, spec: Mapping[str, Any]) -> CalendarInfo:
        """Store the blackout calendar ``name`` (``{"cron": ..., "between": ..., "tz": ...}``,
        see :mod:`redbeat_core.blackouts`), replacing a stored one of that name; beats use it
        within :data:`~redbeat_core.blackouts.STORED_REFRESH` seconds. Refused for a name the
        settings declare, and with what is wrong with ``spec``."""
        store = self._calendar_store(name)
        try:
            text = calendar_json(name, spec)
        except ValueError as exc:
            raise RedBeatError(f"blackout calendar {name!r}: {exc}") from None
        store.store_calendar(name, text)
        record_change(self._runtime, "set calendar", [name], detail=text)
        (info,) = [c for c in self.calendars() if c.name == name]
        return info

    def delete_calendar(self, name: str) -> None:
        """Delete the stored calendar ``name`` (entries that name it then run through it, and
        the beat says so)."""
        store = self._calendar_store(name)
        if name not in store.stored_calendars():
            raise RedBeatError(f"no blackout calendar named {name!r} is stored")
        store.store_calendar(name, None)
        record_change(self._runtime, "delete calendar", [name])

    def _calendar_store(self, name: str) -> CalendarStore:
        runtime = self._runtime
        if not isinstance(name, str) or not name:
            raise RedBeatError("a blackout calendar's name is a non-empty string")
        if name in (runtime.config.settings.get("redbeat_calendars") or {}):
            raise RedBeatError(
                f"the blackout calendar {name!r} is declared in redbeat_calendars: change it "
                "there (a stored calendar cannot replace a declared one)"
            )
        store = runtime.store
        if not isinstance(store, CalendarStore):
            raise RedBeatError(
                f"{type(store).__name__} keeps no blackout calendars (CalendarStore): declare "
                "them in redbeat_calendars"
            )
        return store

    # ----------------------------------------------------------------- the beats

    def lock_status(self) -> LockStatus:
        """Who leads (host:pid, since when, epoch), how long its lease has left, and the
        standbys seen in the last minute. Raises ``ValueError`` when the app runs without a
        lock (``redbeat_lock_key = None``) or its lock cannot say."""
        runtime = self._runtime
        if runtime.config.lock_key is None:
            raise ValueError("this app runs a single beat without a lock (redbeat_lock_key=None)")
        lock = runtime.plugins.make_lock(runtime.config, runtime.backend)
        status = getattr(lock, "status", None)
        if status is None:
            raise ValueError(f"the lock ({type(lock).__name__}) cannot report its status")
        result: LockStatus = status()
        return result

    # ----------------------------------------------------------------- export and import

    def export(self) -> builtins.list[dict[str, Any]]:
        """Every readable entry's definition and runs, as JSON-ready dicts (RedBeat's codec:
        the schedule as tagged JSON, times in ISO 8601), for :meth:`import_`."""
        runtime = self._runtime
        exported: builtins.list[dict[str, Any]] = []
        names = self.names()
        for start in range(0, len(names), PAGE):
            page = names[start : start + PAGE]
            for stored in runtime.store.load_many(page):
                if stored is None or not stored.definition:
                    continue
                # As stored: plain JSON with the schedule as its ``__type__`` dict (nothing
                # decoded, so an entry a plugin's type holds exports without that plugin).
                exported.append(
                    {
                        "name": stored.name,
                        "definition": json.loads(stored.definition),
                        "meta": json.loads(stored.meta) if stored.meta else None,
                        "policy": json.loads(stored.policy) if stored.policy else None,
                    }
                )
        return exported

    def import_(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        keep_runs: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Store every exported entry (replacing entries of the same name); each is checked
        as :meth:`add` checks it, all of them before any is written. ``keep_runs`` keeps the
        exported run count and last run. Returns how many were stored.

        They are written :data:`CHUNK` at a time, one round trip each (a storage that fails
        midway leaves the chunks before written: importing the file again is safe), and
        ``progress(written, total)`` is called after each chunk (a progress bar)."""
        runtime = self._runtime
        entries = []
        for item in items:
            name = str(item.get("name", ""))
            meta = item.get("meta") if keep_runs else None
            policy = item.get("policy")
            stored = StoredEntry(
                name=name,
                definition=json.dumps(item.get("definition")),
                meta=json.dumps(meta) if meta else None,
                policy=json.dumps(policy) if policy else None,
            )
            entries.append(RedBeatSchedulerEntry.from_stored(stored, app=self.app, runtime=runtime))
        stored_entries = [entry.to_stored() for entry in entries]  # all checked before writing
        total = len(entries)
        for start in range(0, total, CHUNK):
            runtime.store.save_many(stored_entries[start : start + CHUNK], keep_meta=False)
            for entry in entries[start : start + CHUNK]:
                runtime.plugins.entry_saved(app=self.app, entry=entry)
            if progress is not None:
                progress(min(start + CHUNK, total), total)
        if total:
            record_change(runtime, "import", [entry.name for entry in entries])
        return total

    def audit(self, limit: int = 20) -> builtins.list[AuditRecord]:
        """The newest ``limit`` changes to the schedule, newest first (empty when the store
        keeps no audit log, :class:`~redbeat_core.audit.AuditStore`)."""
        store = self._runtime.store
        if not isinstance(store, AuditStore):
            return []
        return decode_audit(store.audit(limit))

    # ----------------------------------------------------------------- helpers

    def _new_entry(
        self,
        name: str,
        task: str,
        schedule: Any,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None,
        enabled: bool,
        policy: EntryPolicy | Mapping[str, Any] | None = None,
    ) -> RedBeatSchedulerEntry:
        return RedBeatSchedulerEntry(
            name,
            task,
            schedule,
            args=args,
            kwargs=dict(kwargs or {}),
            options=dict(options or {}),
            enabled=enabled,
            policy=policy,
            app=self.app,
        )

    def _entry(self, name: str) -> RedBeatSchedulerEntry:
        runtime = self._runtime
        stored = runtime.store.load(name)
        if stored is None or not stored.definition:
            raise EntryNotFoundError(name)
        return RedBeatSchedulerEntry.from_stored(stored, app=self.app, runtime=runtime)

    def _info(self, stored: StoredEntry, reason: str | None, static: bool) -> EntryInfo:
        runtime = self._runtime
        key = runtime.config.key_for(stored.name)
        try:
            entry = RedBeatSchedulerEntry.from_stored(stored, app=self.app, runtime=runtime)
        except EntryDecodeError as exc:
            return EntryInfo(
                name=stored.name,
                key=key,
                state=EntryState.QUARANTINED,
                task=None,
                schedule=None,
                schedule_text="(cannot be read)",
                next_run=None,
                last_run_at=None,
                total_run_count=0,
                reason=reason or exc.reason,
                static=static,
            )
        policy = entry.policy
        if reason is not None:
            state = EntryState.QUARANTINED
        elif entry.paused and policy is not None:
            state = EntryState.PAUSED
            reason = policy.paused_reason
        elif not entry.enabled:
            state = EntryState.DISABLED
        elif stored.score is None:
            state = EntryState.FINISHED
            reason = _finished_why(entry)
        else:
            state = EntryState.SCHEDULED
        scheduled = state is EntryState.SCHEDULED and stored.score is not None
        return EntryInfo(
            name=stored.name,
            key=key,
            state=state,
            task=entry.task,
            schedule=entry.schedule,
            schedule_text=describe_schedule(entry.schedule),
            next_run=(
                datetime.fromtimestamp(stored.score, UTC)
                if scheduled and stored.score is not None
                else None
            ),
            last_run_at=entry.last_run_at,
            total_run_count=entry.total_run_count or 0,
            args=tuple(entry.args or ()),
            kwargs=dict(entry.kwargs or {}),
            options=dict(entry.options or {}),
            enabled=bool(entry.enabled),
            reason=reason,
            paused_by=policy.paused_by if state is EntryState.PAUSED and policy else None,
            paused_at=(
                datetime.fromtimestamp(policy.paused_at, UTC)
                if state is EntryState.PAUSED and policy and policy.paused_at is not None
                else None
            ),
            static=static,
            policy=_policy_fields(policy),
        )


def _preview(schedule: Any, first: datetime, count: int) -> list[datetime]:
    """``first`` and the runs after it, asking the schedule as if each run had just happened
    (its clock pinned to that run), so it is the schedule's own answer, DST and all."""
    runs: list[datetime] = []
    moment = first
    while len(runs) < count:
        runs.append(moment)
        pinned = schedule if has_own_clock(schedule) else schedule_at(schedule, moment)
        remaining = pinned.remaining_estimate(moment)
        if remaining is None:
            break
        later = shift(moment, max(remaining, timedelta(0)))
        if later <= moment:  # a schedule that says "now" again would repeat this run
            later = shift(moment, timedelta(seconds=1))
        moment = later.astimezone(UTC)
    return runs


def _policy_preview(
    entry: RedBeatSchedulerEntry, resolved: Resolved, first: datetime, count: int
) -> list[datetime]:
    """:func:`_preview` with the policy applied: each run's jitter, the end and ``max_runs``.
    ``first`` is the stored next run (jitter and start included)."""
    left = count
    if resolved.max_runs is not None:
        left = min(count, resolved.max_runs - (entry.total_run_count or 0))
    if left <= 0:
        return []
    runs = [first]
    nominal = first
    if resolved.jitter and entry.last_run_at is not None:  # the place the first one has
        nominal = _preview(entry.schedule, entry.last_run_at, 2)[-1]
        if nominal > first or nominal < first - timedelta(seconds=resolved.jitter):
            nominal = first  # overdue: the first runs at once
    for moment in _preview(entry.schedule, nominal, left + 1)[1:]:
        if len(runs) >= left:
            break
        at = moment.timestamp()
        if resolved.end_at is not None and at > resolved.end_at:
            break
        at += jitter_offset(entry.name, at, resolved.jitter)
        runs.append(datetime.fromtimestamp(unix_to_score(at), UTC))
    return runs


def _policy_fields(policy: EntryPolicy | None) -> dict[str, Any]:
    """The scheduling fields ``policy`` sets, bounds as UTC datetimes."""
    if policy is None:
        return {}
    fields: dict[str, Any] = {}
    for field in POLICY_FIELDS:
        value = getattr(policy, field)
        if value is None:
            continue
        if field in {"start_at", "end_at"}:
            value = datetime.fromtimestamp(value, UTC)
        fields[field] = value
    return fields


def _finished_why(entry: RedBeatSchedulerEntry) -> str:
    """Why an enabled entry out of the schedule is finished."""
    resolved = entry.resolved_policy()
    runs = entry.total_run_count or 0
    reason = finish_reason(resolved, due=time.time(), runs=runs)
    return reason or "its schedule has no further runs"


def _merge_policy(
    name: str, current: EntryPolicy | None, change: EntryPolicy | Mapping[str, Any] | None
) -> EntryPolicy:
    """``current`` with ``change``'s fields set (an :class:`EntryPolicy` sets every scheduling
    field; a dict only the fields it names, None meaning the app's default). A pause and the
    fields a newer version wrote are kept."""
    base = current or EntryPolicy()
    if change is None:
        reset: dict[str, Any] = dict.fromkeys(POLICY_FIELDS)
        return attrs.evolve(base, **reset)
    if isinstance(change, EntryPolicy):
        return attrs.evolve(base, **{f: getattr(change, f) for f in POLICY_FIELDS})
    if not isinstance(change, Mapping):
        raise InvalidEntryError(name, "policy", change, validation.POLICY)
    checked = validation.policy_from_mapping(name, change)
    return attrs.evolve(base, **{f: getattr(checked, f) for f in change})


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _names_an_entry(name: str, config: Any) -> bool:
    """Whether ``name`` can be an entry's: not the lock's own keys (its holder record sits under
    the prefix when ``redbeat_lock_key`` has no ``:``-prefixed name)."""
    try:
        validation.check_name(name, config)
    except InvalidEntryError:
        return False
    return True
