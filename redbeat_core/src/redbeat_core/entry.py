"""The Celery-facing schedule entry, with celery-redbeat's API.

``RedBeatSchedulerEntry`` is a :class:`celery.beat.ScheduleEntry` that can save itself to, and
load itself from, the app's storage. Its methods and their meaning are celery-redbeat 2.4's, so
code that creates entries at runtime keeps working; storage goes through the backend-neutral
:class:`~redbeat_core.typing.ScheduleStore`, never through a storage client.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Mapping
from datetime import MINYEAR, UTC, datetime, timedelta
from typing import Any, Self

from celery.app import app_or_default
from celery.beat import ScheduleEntry
from celery.schedules import BaseSchedule, crontab, schedstate
from celery.schedules import schedule as interval
from celery.utils.time import maybe_make_aware

from redbeat_core import audit, records, validation
from redbeat_core.codec import Codec
from redbeat_core.model import EntryDefinition, EntryMeta, EntryPolicy
from redbeat_core.policy import PolicyDefaults, Resolved, finish_reason, jitter_offset, resolve
from redbeat_core.runtime import Runtime, ensure_conf, get_runtime
from redbeat_core.schedules import clocked
from redbeat_core.typing import StoredEntry

#: How long a disabled entry waits before ``is_due`` is asked again (celery-redbeat's value).
DISABLED_RECHECK_SECONDS = 5.0
#: "Not given" for arguments where None means something (an entry that never ran).
_UNSET: Any = object()


@functools.cache
def _plain_codec() -> Codec:
    """A codec without plugin types, for the static decode helpers that get no app."""
    return Codec()


def to_score(moment: datetime | None, *, overdue: bool = False) -> float | None:
    """A due time as a sorted-set score: Unix seconds with millisecond precision.

    A future due time is rounded *up*, so a beat that wakes at the score never finds the entry a
    fraction of a millisecond early; a time that is already due ("now") is rounded down, so the
    entry is due for the very next tick.
    """
    if moment is None:
        return None
    millis: float = maybe_make_aware(moment).timestamp() * 1000
    return (math.floor(millis) if overdue else math.ceil(millis)) / 1000


def unix_to_score(moment: float, *, overdue: bool = False) -> float:
    """:func:`to_score` for Unix seconds."""
    millis = moment * 1000
    return (math.floor(millis) if overdue else math.ceil(millis)) / 1000


def shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment`` plus ``delta`` of real time, in ``moment``'s zone. Python adds a timedelta to
    an aware datetime on the wall clock, which is off by the change of a daylight-saving
    transition in between (after a fall back, a run computed that way comes an hour late)."""
    if moment.tzinfo is None or moment.tzinfo is UTC:
        return moment + delta
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)


def has_own_clock(schedule: Any) -> bool:
    """Whether ``schedule`` reads a clock of its own (``nowfun``) rather than the app's, so a
    clock read once for many entries must not stand in for it."""
    return getattr(schedule, "nowfun", None) is not None


def schedule_at(schedule: Any, now: datetime) -> Any:
    """``schedule`` reading ``now`` as its clock: the schedule itself when it already does
    (a tick's entries are decoded with the tick's clock), else a shallow copy of it that does.

    Celery's schedules read their clock through ``nowfun`` and offer no other way to be asked
    "at ``now``"; a copy leaves the caller's object alone (no clock swapped in and out of an
    object another thread may use)."""
    clock = getattr(schedule, "nowfun", None)
    if clock is not None and clock() == now:
        return schedule
    state = getattr(schedule, "__dict__", None)
    if state is None:  # a schedule class with __slots__: the standard copy
        pinned = copy.copy(schedule)
    else:  # Celery's schedules rebuild themselves in copy.copy (crontab re-parses its fields)
        pinned = object.__new__(type(schedule))
        pinned.__dict__.update(state)
    pinned.nowfun = lambda: now
    return pinned


class RedBeatSchedulerEntry(ScheduleEntry):  # type: ignore[misc]
    """A schedule entry stored in RedBeat's storage.

    ``RedBeatSchedulerEntry("name", "tasks.add", schedule(30), args=[1, 2], app=app).save()``
    creates or replaces an entry from any process; a running beat picks it up at its next tick.
    """

    #: RedBeat's own per-entry settings, stored apart from the definition (None = keep stored).
    policy: EntryPolicy | None = None
    name: str
    task: str
    enabled: bool
    last_run_at: datetime | None
    total_run_count: int

    def __init__(
        self,
        name: str | None = None,
        task: str | None = None,
        schedule: Any = None,
        args: Any = None,
        kwargs: Any = None,
        enabled: bool = True,
        options: Any = None,
        policy: EntryPolicy | Mapping[str, Any] | None = None,
        **clsargs: Any,
    ) -> None:
        if schedule is not None and not isinstance(schedule, BaseSchedule):
            # Celery converts the schedule here and would fail with a raw AttributeError or
            # OverflowError; every other field is checked when the entry is stored (save()),
            # as celery-redbeat code sets attributes between building and saving an entry.
            validation.check_schedule_type(name, schedule)
        if isinstance(policy, Mapping):  # beat_schedule and apply files write a dict
            policy = validation.policy_from_mapping(name, policy)
        clsargs["app"] = app_or_default(clsargs.get("app"))
        fresh_one_off = isinstance(schedule, clocked) and clsargs.get("last_run_at") is None
        super().__init__(
            name=name,
            task=task,
            schedule=schedule,
            args=args,
            kwargs=kwargs,
            options=options,
            **clsargs,
        )
        if fresh_one_off:
            # Celery stamps a new entry as "run now"; a one-off that never ran must stay unrun.
            self.last_run_at = None
        self.enabled = enabled
        self.policy = policy
        ensure_conf(self.app)

    # ----------------------------------------------------------------- runtime

    @property
    def _runtime(self) -> Runtime:
        return get_runtime(self.app)

    # ----------------------------------------------------------------- celery-redbeat API

    @staticmethod
    def generate_key(app: Any, name: str) -> str:
        """The storage key of the entry ``name``. Raises ``InvalidEntryError`` for a name that
        cannot name an entry (not a non-empty string, or one of RedBeat's own keys)."""
        config = get_runtime(app).config
        return config.key_for(validation.check_name(name, config))

    @property
    def key(self) -> str:
        return self.generate_key(self.app, self.name)

    @staticmethod
    def decode_definition(definition: str | bytes) -> Any:
        """The stored definition JSON as a dict, schedules and datetimes decoded."""
        return _plain_codec().loads(definition)

    @staticmethod
    def decode_meta(meta: str | bytes | None, app: Any = None) -> Any:
        """The stored meta JSON as a dict; ``{'last_run_at': None}`` when there is none."""
        if not meta:
            return {"last_run_at": None}
        codec = get_runtime(app).codec if app is not None else _plain_codec()
        return codec.loads(meta)

    @staticmethod
    def load_definition(key: str, app: Any = None, definition: str | None = None) -> Any:
        app = app_or_default(app)
        if definition is None:
            runtime = get_runtime(app)
            stored = runtime.store.load(runtime.config.name_for(key))
            definition = stored.definition if stored is not None else None
        if not definition:
            raise KeyError(key)
        return get_runtime(app).codec.loads(definition)

    @staticmethod
    def load_meta(key: str, app: Any = None) -> Any:
        app = app_or_default(app)
        runtime = get_runtime(app)
        stored = runtime.store.load(runtime.config.name_for(key))
        return RedBeatSchedulerEntry.decode_meta(stored.meta if stored else None, app=app)

    @classmethod
    def from_key(cls, key: str, app: Any = None) -> RedBeatSchedulerEntry:
        """Load an entry by its storage key. Raises ``KeyError`` when there is none."""
        app = app_or_default(app)
        runtime = get_runtime(app)
        stored = runtime.store.load(runtime.config.name_for(key))
        if stored is None or not stored.definition:
            raise KeyError(key)
        return cls.from_stored(stored, app=app, runtime=runtime)

    @classmethod
    def from_stored(
        cls,
        stored: StoredEntry,
        *,
        app: Any,
        runtime: Runtime | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> Self:
        """Build an entry from what a store returned. Raises ``EntryDecodeError``.

        ``now`` is the clock the entry's schedule reads (the scheduler gives one instant per
        tick), unless the stored schedule has a clock of its own.
        """
        codec = (runtime or get_runtime(app)).codec
        return records.decode_entry(stored, app=app, codec=codec, entry_class=cls, clock=now)

    @classmethod
    def from_model(
        cls,
        definition: EntryDefinition,
        meta: EntryMeta,
        policy: EntryPolicy | None = None,
        *,
        app: Any,
    ) -> Self:
        entry = cls(
            name=definition.name,
            task=definition.task,
            schedule=definition.schedule,
            args=definition.args,
            kwargs=definition.kwargs,
            options=definition.options,
            enabled=definition.enabled,
            policy=policy,
            total_run_count=meta.total_run_count,
            last_run_at=meta.last_run_at,  # (when None, Celery stamps now; reset below)
            app=app,
        )
        # celery's ScheduleEntry stamps last_run_at = now when None: that is wrong for an entry
        # that never ran, which is due at once.
        entry.last_run_at = meta.last_run_at
        return entry

    def to_definition(self) -> EntryDefinition:
        return EntryDefinition(
            name=self.name,
            task=self.task,
            schedule=self.schedule,
            args=self.args if self.args is not None else (),
            kwargs=self.kwargs or {},
            options=self.options or {},
            enabled=self.enabled,
        )

    def to_meta(self) -> EntryMeta:
        return EntryMeta(last_run_at=self.last_run_at, total_run_count=self.total_run_count or 0)

    def now_or(self, pinned: datetime | None) -> datetime:
        """``pinned`` (one instant shared by many entries, read once), unless this entry's
        schedule has a clock of its own (``nowfun``) or none is given: then the entry's clock."""
        if pinned is None or has_own_clock(self.schedule):
            return self.default_now()  # type: ignore[no-any-return]
        return pinned

    def _next_due(
        self, now: datetime | None = None, *, last_run_at: datetime | Any | None = _UNSET
    ) -> tuple[datetime | None, bool]:
        """(when the entry is next due, whether that is already now); (None, False) when its
        schedule has no further runs. ``now`` pins the clock (see :meth:`now_or`);
        ``last_run_at`` stands in for the entry's own (the state after a run being planned)."""
        now = self.now_or(now)
        last = self.last_run_at if last_run_at is _UNSET else last_run_at
        if last is None and not isinstance(self.schedule, clocked):
            return now, True  # never ran: due at once (a one-off waits for its own time)
        delta = self._remaining_at(now, last)
        if delta is None:
            return None, False
        if delta.total_seconds() <= 0:
            return now, True
        return shift(now, delta), False

    def _remaining_at(self, now: datetime, last_run_at: datetime | None) -> timedelta | None:
        """The schedule's remaining time, computed at exactly ``now``: the schedule reads its
        clock again otherwise, and ``now + delta`` would land microseconds before the true due
        time (a crontab entry due at :00 would come out at 59.99997)."""
        remaining: timedelta | None = schedule_at(self.schedule, now).remaining_estimate(
            last_run_at
        )
        return remaining

    @property
    def due_at(self) -> datetime | None:
        """When the entry is next due; None when its schedule has no further runs.

        Never run, or overdue, means due now. celery-redbeat adds the remaining time to
        ``last_run_at``, which is only right when the entry ran just now; we add it to now.
        """
        return self._next_due()[0]

    @property
    def paused(self) -> bool:
        """Whether the entry is paused (``Schedule.pause``): out of the schedule, like a
        disabled one, with a reason, an author and a time in its policy."""
        return self.policy is not None and self.policy.paused_reason is not None

    def resolved_policy(self, defaults: PolicyDefaults | None = None) -> Resolved | None:
        """This entry's scheduling policy over the app's defaults (``defaults``: the app's
        when not given); None when it is Celery's behaviour (see :mod:`redbeat_core.policy`)."""
        if defaults is None:
            defaults = self._runtime.policy_defaults
        if self.policy is None and defaults.inert:
            return None
        return resolve(self.policy, defaults)

    def next_score(self, now: datetime | None = None) -> float | None:
        """:attr:`due_at` as a score, or None when the entry must stay out of the schedule
        (disabled, paused, no further runs, or finished by its policy's bounds), with its
        policy's start, end and jitter applied. ``now`` pins the clock (see :meth:`now_or`)."""
        if not self.enabled or self.paused:
            return None
        due, overdue = self._next_due(now)
        resolved = self.resolved_policy()
        if resolved is None:
            return to_score(due, overdue=overdue)
        return self.policy_score(resolved, due, overdue=overdue, runs=self.total_run_count or 0)

    def policy_score(
        self,
        resolved: Resolved,
        due: datetime | None,
        *,
        overdue: bool,
        runs: int | None,
        ran_at: datetime | None = None,
    ) -> float | None:
        """The score of a run the schedule puts at ``due`` (``overdue``: already due), once the
        policy's bounds and jitter are applied; None when the entry is finished. ``runs`` is
        the run count the ``max_runs`` bound is checked against (None: not checked here);
        ``ran_at`` the last run when it is not the entry's own (the state after a run)."""
        if due is None:
            return None
        if runs is not None and finish_reason(resolved, due=None, runs=runs):
            return None
        moment = due.timestamp()
        if resolved.start_at is not None and moment < resolved.start_at:
            first = self.first_due_from(resolved.start_at)
            if first is None:
                return None
            moment, overdue = first, False
        if resolved.end_at is not None and moment > resolved.end_at:
            return None
        last = self.last_run_at if ran_at is None else ran_at
        if resolved.jitter and not overdue and last is not None:
            moment += jitter_offset(self.name, moment, resolved.jitter)
        return unix_to_score(moment, overdue=overdue)

    def first_due_from(self, start: float) -> float | None:
        """The first due time at or after ``start`` (Unix seconds) by the schedule alone: an
        interval starts at ``start``, a crontab (or any other schedule) at its first match from
        then on. None when the schedule has no run then."""
        schedule = self.schedule
        if type(schedule) is interval:
            return start
        moment = datetime.fromtimestamp(start, UTC)
        remaining: timedelta | None = schedule_at(schedule, moment).remaining_estimate(
            moment - timedelta(milliseconds=1)
        )
        if remaining is None:
            return None
        return max(start, start + remaining.total_seconds())

    def score_after_run(
        self,
        next_in: float | None,
        *,
        ran_at: datetime | Any | None = _UNSET,
        resolved: Resolved | None = None,
    ) -> float | None:
        """:meth:`next_score` of the entry once it has run at ``ran_at`` (default: its own
        ``last_run_at``, for an entry already stamped), given ``next_in``, the seconds that its
        ``is_due()`` answered along with "due", and ``resolved``, its policy (None: Celery's
        behaviour). The ``max_runs`` bound is the caller's (a skipped run does not count).

        For Celery's interval (not ``relative``) and crontab schedules that answer is exactly
        the time from the run to the next one, computed the way :meth:`next_score` would:
        taking it saves asking the schedule twice per run, a tenth of a busy tick's own work.
        Any other schedule (subclasses included) is asked, as ``is_due``'s "next" only promises
        when to check again.
        """
        schedule = self.schedule
        last = self.last_run_at if ran_at is _UNSET else ran_at
        if not self.enabled or self.paused:
            return None
        if (
            next_in is not None
            and next_in > 0
            and last is not None
            and (
                type(schedule) is crontab or (type(schedule) is interval and not schedule.relative)
            )
        ):
            due: datetime | None = shift(last, timedelta(seconds=next_in))
            overdue = False
        else:
            due, overdue = self._next_due(last_run_at=last)
        if resolved is None:
            return to_score(due, overdue=overdue)
        return self.policy_score(resolved, due, overdue=overdue, runs=None, ran_at=last)

    def with_run(self, ran_at: datetime, *, counted: bool = True) -> Self:
        """A copy of this entry stamped with a run at ``ran_at`` (one more run unless it was a
        skip), as Celery's ``next(entry)`` gives, without touching this one. A shallow copy:
        building a new ``ScheduleEntry`` costs twenty times as much, per run, per tick."""
        stamped = object.__new__(type(self))
        stamped.__dict__.update(self.__dict__)
        stamped.last_run_at = ran_at
        stamped.total_run_count = (self.total_run_count or 0) + (1 if counted else 0)
        return stamped

    @property
    def score(self) -> float:
        """The due time as a score, its policy applied; -1 when the schedule is finished
        (celery-redbeat's value)."""
        due, overdue = self._next_due()
        resolved = self.resolved_policy()
        if resolved is None:
            score = to_score(due, overdue=overdue)
        else:
            runs = self.total_run_count or 0
            score = self.policy_score(resolved, due, overdue=overdue, runs=runs)
        return -1 if score is None else score

    @property
    def rank(self) -> int | None:
        return self._runtime.store.rank(self.name)

    def is_due(self) -> schedstate:
        """Celery's ``(is_due, next check in seconds)``. Raises ``InvalidEntryError`` for an
        interval the beat refuses to run (shorter than ``redbeat_min_interval``; see
        :func:`~redbeat_core.validation.check_interval`): one stored by celery-redbeat or a
        script is quarantined by the tick instead of being published in a loop."""
        if not self.enabled or self.paused:
            return schedstate(False, DISABLED_RECHECK_SECONDS)
        schedule = self.schedule
        if isinstance(schedule, interval):
            validation.check_interval(self.name, schedule, self._runtime.config.min_interval)
        return schedule.is_due(self.last_run_at or datetime(MINYEAR, 1, 2, tzinfo=schedule.tz))

    def to_stored(self, now: datetime | None = None) -> StoredEntry:
        """What :meth:`save` writes: definition, meta, policy and the score (None when the entry
        is disabled or finished, which keeps it out of the schedule). ``now`` pins the clock
        (see :meth:`now_or`).

        Raises ``InvalidEntryError`` naming the field for an entry that cannot be stored
        (see :mod:`redbeat_core.validation`)."""
        runtime = self._runtime
        validation.check_entry(self, runtime.config)
        return records.encode_entry(self, codec=runtime.codec, now=now)

    def save(self) -> RedBeatSchedulerEntry:
        """Store the definition (the stored last_run_at is kept) and (re)schedule the entry.

        Raises ``InvalidEntryError`` naming the field, before anything is written, for an entry
        that cannot be stored."""
        stored = self.to_stored()
        runtime = self._runtime
        runtime.store.save(stored, keep_meta=True)
        audit.record_change(runtime, "save", [self.name])
        runtime.plugins.entry_saved(app=self.app, entry=self)
        return self

    def delete(self) -> None:
        runtime = self._runtime
        name = validation.check_name(self.name, runtime.config)
        runtime.store.delete(name)
        audit.record_change(runtime, "delete", [name])
        runtime.plugins.entry_deleted(app=self.app, name=name)

    def _next_instance(
        self, last_run_at: datetime | None = None, only_update_last_run_at: bool = False
    ) -> RedBeatSchedulerEntry:
        """The entry after one more run, persisted (celery-redbeat's ``next(entry)``)."""
        entry: RedBeatSchedulerEntry = super()._next_instance(last_run_at=last_run_at)
        entry.policy = self.policy
        if only_update_last_run_at:
            entry.total_run_count = self.total_run_count
        runtime = self._runtime
        name = validation.check_name(entry.name, runtime.config)
        meta = records.encode_meta(runtime.codec, entry.last_run_at, entry.total_run_count)
        runtime.store.update_meta(name, meta, entry.next_score())
        return entry

    __next__ = next = _next_instance

    def reschedule(self, last_run_at: datetime | None = None) -> None:
        """Pretend the entry last ran at ``last_run_at`` (default now) and reschedule it."""
        runtime = self._runtime
        name = validation.check_name(self.name, runtime.config)
        self.last_run_at = last_run_at or self.default_now()
        meta = records.encode_meta(runtime.codec, self.last_run_at, self.total_run_count)
        runtime.store.update_meta(name, meta, self.next_score())
