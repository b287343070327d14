"""RedBeat's Celery scheduler: one class for every storage backend.

A tick is one storage round trip when nothing is due: ``claim_due`` checks and extends the lock
and returns the due entries (at most ``redbeat_batch_size``) and the next due time. When entries
are due, their next runs are computed here with Celery's own schedule objects, and one
``commit`` writes the new meta and due times. Round trips per tick do not grow with the number
of entries due or stored. The beat then sleeps until the next due time, capped so that the lock
is renewed in time.

A standby (a beat that does not hold the lock) never blocks: its tick tries the lock once and
returns the poll interval, so Celery's beat loop, pidbox and ``inspect ping`` keep working.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
from celery.beat import Scheduler
from celery.schedules import crontab
from celery.utils.time import humanize_seconds

from redbeat_core.config import RedBeatConfig
from redbeat_core.entry import RedBeatSchedulerEntry, has_own_clock
from redbeat_core.exceptions import EntryDecodeError, StoreUnavailableError
from redbeat_core.runtime import Runtime, get_runtime
from redbeat_core.schedules import clocked
from redbeat_core.typing import (
    ClaimResult,
    EntryUpdate,
    Lock,
    Quarantine,
    ScheduleStore,
    StoredEntry,
)

logger = logging.getLogger("celery.beat")

#: Seconds of difference between local and storage clocks worth a warning.
MAX_CLOCK_SKEW = 1.0

#: Whether this process has frozen its start-up objects (see ``_freeze_startup_objects``).
_gc_frozen = False


@attrs.frozen
class Dispatched:
    """One publish, as reported to ``redbeat_after_dispatch``."""

    entry: RedBeatSchedulerEntry
    due_at: float
    published_at: float
    result: Any


def _fixed_clock(now: datetime, ahead: float) -> Callable[[], datetime]:
    """A schedule clock stopped ``ahead`` seconds after ``now`` (before it when negative)."""
    moment = now + timedelta(seconds=ahead)
    return lambda: moment


@attrs.define
class _TickPlan:
    """What a tick decided about its claimed entries before it publishes anything."""

    due: list[tuple[RedBeatSchedulerEntry, float]] = attrs.field(factory=list)
    updates: list[EntryUpdate] = attrs.field(factory=list)
    quarantine: list[Quarantine] = attrs.field(factory=list)


class RedBeatScheduler(Scheduler):  # type: ignore[misc]
    """Celery beat scheduler keeping its schedule in Redis (or any registered backend).

    Use it with ``celery beat -S redbeat.RedBeatScheduler`` (or ``-S redbeat``).
    """

    Entry = RedBeatSchedulerEntry

    #: celery-redbeat exposed the lock object here; ours is a :class:`~redbeat_core.typing.Lock`.
    lock: Lock | None = None

    def __init__(
        self,
        app: Any,
        lock_key: str | None = None,
        lock_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        overrides = {
            "lock_key": lock_key,
            "lock_timeout": lock_timeout,
            "max_interval": kwargs.get("max_interval"),
        }
        overrides = {k: v for k, v in overrides.items() if v is not None}
        # Settings are read and checked here: a bad one stops start-up with its name.
        self._runtime: Runtime = get_runtime(app, **overrides)
        self._unreachable_since: float | None = None
        self._last_fence_ok: float = 0.0
        self._started = False
        self._skew_warned = False
        #: Set while a tick publishes; a close() meanwhile waits for the end (see close()).
        self._dispatching = False
        self._close_deferred = False
        super().__init__(app, **kwargs)
        self.max_interval = self.config.max_interval

    # ----------------------------------------------------------------- properties

    @property
    def config(self) -> RedBeatConfig:
        return self._runtime.config

    @property
    def store(self) -> ScheduleStore:
        """The storage this scheduler reads and writes (for plugins: counts, quarantine)."""
        return self._runtime.store

    @property
    def lock_key(self) -> str | None:
        return self.config.lock_key

    @property
    def lock_timeout(self) -> float:
        return self.config.lock_timeout

    def _lock(self) -> Lock:
        if self.lock is None:
            self.lock = self._runtime.plugins.make_lock(self.config, self._runtime.backend)
        return self.lock

    # ----------------------------------------------------------------- start-up

    def setup_schedule(self) -> None:
        """Sync ``beat_schedule`` into storage (see ``_sync_statics``). Storage that cannot be
        reached stops start-up with an error saying where it looked and how to wait for it."""
        try:
            self._sync_statics()
        except StoreUnavailableError as exc:
            reason = str(exc).rstrip(".")
            raise StoreUnavailableError(
                f"beat cannot start: its storage ({self._runtime.backend.describe()}) is "
                f"unreachable while syncing beat_schedule: {reason}. Start the server or fix the "
                "storage URL (redbeat_redis_url or redbeat_url). To wait for the storage at "
                "start-up instead, give the Redis backends a retry period: "
                "redbeat_redis_options = {'retry_period': seconds} (-1: forever)."
            ) from exc

    def _sync_statics(self) -> None:
        """Sync ``beat_schedule`` into storage in three round trips, whatever its size: read the
        previous statics and every static's stored entry, then write the new and the changed
        ones (keeping each last_run_at), delete the statics that left the configuration, and
        record the new set of statics. A static stored exactly as configured and scheduled is
        left alone, so a restart with an unchanged ``beat_schedule`` rewrites nothing. A static
        that cannot be built or encoded is logged with its name and skipped; the others are
        stored."""
        runtime = self._runtime
        store = runtime.store
        static = dict(self.app.conf.beat_schedule or {})
        defaults: dict[str, Any] = {}
        self._collect_default_entries(defaults, static)

        previous = store.statics()
        removed = sorted(previous - set(static))
        wanted = {**defaults, **static}
        names = list(wanted)
        stored = store.load_many(names) if names else []
        # One instant for the whole sync: reading the app's clock twice per entry was a sixth
        # of the start-up with 10,000 statics.
        now = self.app.now()
        to_save: list[StoredEntry] = []
        unreadable: list[StoredEntry] = []
        unchanged = 0
        for name, current in zip(names, stored, strict=True):
            try:
                entry = self._maybe_entry(name, wanted[name], now=now)
                if current is not None and self._stored_as_is(entry, current):
                    unchanged += 1
                    continue
                readable = True
                if current is not None and current.meta:
                    readable = self._keep_run_history(entry, current.meta)
                new = entry.to_stored(now)  # fails here, named, if it cannot be encoded
                to_save.append(new)
                if not readable:
                    unreadable.append(new)
            except Exception as exc:
                logger.error(
                    "beat: cannot add static entry %r from beat_schedule: %s. Fix its definition "
                    "in beat_schedule; the other entries are stored.",
                    name,
                    exc,
                )
        for name in removed:
            logger.info("beat: removing static entry %r: it left beat_schedule", name)
        store.replace_statics(to_save, removed, statics=sorted(static))
        for new in unreadable:  # saves keep a stored meta: overwrite the unreadable ones
            store.update_meta(new.name, new.meta or "", new.score)
        logger.info(
            "beat: %d static entries synced (%d unchanged), %d removed",
            len(to_save) + unchanged,
            unchanged,
            len(removed),
        )

    def _stored_as_is(self, entry: RedBeatSchedulerEntry, current: StoredEntry) -> bool:
        """Whether the static ``entry`` is stored exactly as configured and scheduled, so that
        writing it again would change nothing: same definition and policy, a due time, not
        quarantined (a quarantined entry has none)."""
        if current.score is None or current.definition is None:
            return False
        codec = self._runtime.codec
        if codec.encode_definition(entry.to_definition()) != current.definition:
            return False
        return entry.policy is None or codec.encode_policy(entry.policy) == current.policy

    def _keep_run_history(self, entry: RedBeatSchedulerEntry, stored_meta: str) -> bool:
        """A redefined static keeps its last run (and so its next due time) across restarts.
        False when the stored meta is unreadable (the entry then starts afresh)."""
        try:
            meta = self._runtime.codec.decode_meta(stored_meta, name=entry.name)
        except EntryDecodeError:
            logger.warning("beat: stored meta of %r is unreadable; resetting it", entry.name)
            return False
        entry.last_run_at = meta.last_run_at
        entry.total_run_count = meta.total_run_count
        return True

    def _collect_default_entries(self, into: dict[str, Any], static: Mapping[str, Any]) -> None:
        """Celery's built-in entries, as ``Scheduler.install_default_entries`` adds them: the
        nightly ``celery.backend_cleanup`` when results expire and the backend cannot expire
        them by itself."""
        conf = self.app.conf
        if "celery.backend_cleanup" in static or not conf.result_expires:
            return
        if self.app.backend.supports_autoexpire:
            return
        into["celery.backend_cleanup"] = {
            "task": "celery.backend_cleanup",
            "schedule": crontab("0", "4", "*"),
            "options": {"expires": 12 * 3600},
        }

    def _maybe_entry(
        self, name: str, entry: Any, *, now: datetime | None = None
    ) -> RedBeatSchedulerEntry:
        """An entry from a ``beat_schedule``-style value. A new entry counts as run ``now``
        (Celery's rule for statics); a one-off (``clocked``) or a schedule with a clock of its
        own gets Celery's default instead."""
        if isinstance(entry, RedBeatSchedulerEntry):
            entry.app = self.app
            return entry
        if isinstance(entry, Mapping):
            fields = dict(entry, name=name, app=self.app)
            schedule = fields.get("schedule")
            if (
                now is not None
                and fields.get("last_run_at") is None
                and not isinstance(schedule, clocked)
                and not has_own_clock(schedule)
            ):
                fields["last_run_at"] = now
            return self.Entry(**fields)
        raise TypeError(f"expected a dict of entry fields, got {type(entry).__name__}")

    def update_from_dict(self, dict_: Mapping[str, Any]) -> None:
        """Save entries given as ``{name: {task, schedule, ...}}`` (celery-redbeat API)."""
        entries = [self._maybe_entry(n, e).to_stored() for n, e in dict_.items()]
        if entries:
            self._runtime.store.save_many(entries, keep_meta=True)

    # ----------------------------------------------------------------- the tick

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One scheduling pass. Returns the seconds to sleep before the next one."""
        if not self._started:
            self._started = True
            self._freeze_startup_objects()
            self._runtime.plugins.scheduler_started(self)
        plugins = self._runtime.plugins
        lock = self._lock()
        try:
            if not lock.held and not self.try_acquire_lock():
                return self._standby_tick()
            now = time.time()
            # Entries due within prepare_ahead are claimed and prepared now, published on time.
            horizon = now + self.config.prepare_ahead
            claim = self._runtime.store.claim_due(lock.fence, horizon, self.config.batch_size)
        except StoreUnavailableError as exc:
            return self._unreachable(exc)
        self._reachable()
        if not claim.owned:
            return self._lost_lock("expired")
        self._last_fence_ok = time.monotonic()
        self._check_skew(claim.server_time, now)
        interval = self._run_claim(claim, now) if claim.entries else self._sleep_for(claim, ())
        if plugins.has_impls("redbeat_tick"):
            plugins.tick(self, leader=True, due=len(claim.entries), next_wake=interval)
        return interval

    def _freeze_startup_objects(self) -> None:
        """Move everything alive after start-up (Celery, kombu, the app, the configuration)
        out of the garbage collector's sight with ``gc.freeze()``, once per process.

        A beat process holds a few hundred thousand such objects, and a full collection scans
        them all: measured 30-40 ms in a ``celery beat`` process, often in the middle of a
        burst of publishes, where it was most of the p99 lateness of a busy second. Frozen
        objects stay alive and are freed by reference counting as usual; only reference cycles
        among them are never collected. Once per process bounds that in processes that build
        many schedulers (test suites). ``redbeat_gc_freeze = False`` turns it off.
        """
        global _gc_frozen  # noqa: PLW0603 (one freeze per process, whatever the schedulers)
        if self.config.gc_freeze and not _gc_frozen:
            _gc_frozen = True
            gc.collect()  # what is garbage now is freed, not frozen
            gc.freeze()

    def _check_skew(self, server_time: float | None, now: float) -> None:
        """Warn once when this host's clock and the store's differ by more than a second.

        Due times are computed with the local clock (Celery's schedules read it), so beats on
        hosts with skewed clocks would dispatch early or late after a failover.
        """
        if server_time is None or self._skew_warned:
            return
        skew = now - server_time
        if abs(skew) > MAX_CLOCK_SKEW:
            self._skew_warned = True
            logger.warning(
                "beat: this host's clock is %.1fs %s the storage server's; due times follow the "
                "local clock, so keep hosts in sync (NTP) for failovers to keep their timing",
                abs(skew),
                "ahead of" if skew > 0 else "behind",
            )

    def try_acquire_lock(self) -> bool:
        """Try the lock once, without blocking. True when this beat is (now) the leader."""
        lock = self._lock()
        if lock.held:
            return True
        if not lock.acquire():
            return False
        fence = lock.fence
        logger.info(
            "beat: acquired the lock%s; this beat now dispatches",
            f" (fencing epoch {fence.epoch})" if fence is not None else "",
        )
        self._last_fence_ok = time.monotonic()
        self._runtime.plugins.lock_acquired(self, fence)
        return True

    def _standby_tick(self) -> float:
        self._reachable()
        return self._report_idle_tick(self.config.lock_poll_interval)

    def _report_idle_tick(self, interval: float, *, leader: bool = False) -> float:
        """Every tick is reported to ``redbeat_tick``: those that claimed nothing (a standby,
        a lost lock, an outage) too."""
        if self._runtime.plugins.has_impls("redbeat_tick"):
            self._runtime.plugins.tick(self, leader=leader, due=0, next_wake=interval)
        return interval

    def _run_claim(self, claim: ClaimResult, now: float) -> float:
        """Plan, commit and publish the claimed entries, in the order the delivery mode sets:
        at-most-once commits first (nothing is published unless the commit, and so the fence,
        held), at-least-once publishes first (a failed commit means they run again)."""
        plan = self._plan(claim.entries, now)
        at_most_once = self.config.delivery == "at-most-once"
        try:
            if at_most_once and not self._commit(plan):
                return self._lost_lock("expired")
            self._dispatch(plan.due)
            if not at_most_once and not self._commit(plan):
                return self._lost_lock("expired")
        except StoreUnavailableError as exc:
            return self._unreachable(exc)
        if len(claim.entries) >= self.config.batch_size:
            return 0.0  # more are due: claim the next batch at once
        return self._sleep_for(claim, plan.updates)

    def _commit(self, plan: _TickPlan) -> bool:
        if not plan.updates and not plan.quarantine:
            return True
        return self._runtime.store.commit(self._lock().fence, plan.updates, plan.quarantine)

    def _plan(self, stored_entries: Sequence[StoredEntry], now: float) -> _TickPlan:
        """Decode the claimed entries and decide, for each, what to publish and store."""
        plan = _TickPlan()
        runtime = self._runtime
        plugins = runtime.plugins
        strict_tasks = self.config.unknown_task == "quarantine"
        # One "now" for the whole tick: every claimed entry is judged, stamped and rescheduled
        # at the same instant (Celery's schedules would otherwise read the app's clock several
        # times per entry, which is a fifth of the planning cost).
        tick_now = self.app.now()
        # Due times are placed on the schedule clock relative to this reading, not to ``now``
        # (read before the claim's round trip): otherwise each run lands that much late, and
        # the ms rounding of the score turns it into 1 ms of drift per run.
        tick_at = tick_now.timestamp()

        def now_fun() -> Any:
            return tick_now

        for stored in stored_entries:
            # An entry due within prepare_ahead is judged and rescheduled at its due time, as
            # if the beat had woken exactly then: it is published then, and it keeps its phase.
            due_at = stored.score if stored.score is not None else now
            run_at = max(now, due_at)
            clock = now_fun if run_at == now else _fixed_clock(tick_now, run_at - tick_at)
            if stored.definition is None:
                # Scheduled but deleted behind our back (celery-redbeat: "Failed to load").
                logger.warning("beat: %s is scheduled but not stored; removing it", stored.name)
                plan.updates.append(EntryUpdate(stored.name, None, None))
                continue
            try:
                entry = RedBeatSchedulerEntry.from_stored(
                    stored, app=self.app, runtime=runtime, now=clock
                )
                if strict_tasks and entry.task not in self.app.tasks:
                    raise EntryDecodeError(
                        stored.name,
                        f"task {entry.task!r} is not registered in this beat's app "
                        "(redbeat_unknown_task='quarantine')",
                    )
            except EntryDecodeError as exc:
                self._quarantine(plan, stored.name, exc.reason)
                continue
            except Exception as exc:  # anything else building the entry: still this entry's fault
                self._quarantine(plan, stored.name, f"cannot build the entry: {exc!r}")
                continue
            # Updates address the stored key's name, whatever name the definition claims.
            name = stored.name
            if not entry.enabled:
                plan.updates.append(EntryUpdate(name, None, None))
                continue
            try:
                is_due, next_time_to_run = entry.is_due()
            except Exception:
                logger.exception(
                    "beat: cannot compute the next run of %r; trying again in %s",
                    entry.name,
                    humanize_seconds(self.max_interval),
                )
                plan.updates.append(EntryUpdate(name, None, run_at + self.max_interval))
                continue
            if not is_due:
                # The score said due but the schedule says "not yet" (a whole-second score
                # written by celery-redbeat, or clock skew): store the precise due time.
                retry_at = None if next_time_to_run is None else run_at + next_time_to_run
                plan.updates.append(EntryUpdate(name, None, retry_at))
                continue
            plan.due.append((entry, due_at))
            plan.updates.append(self._advance(name, entry, next_time_to_run))
        if plugins.has_impls("redbeat_entry_quarantined"):
            for item in plan.quarantine:
                plugins.entry_quarantined(self, item.name, item.reason)
        return plan

    def _quarantine(self, plan: _TickPlan, name: str, reason: str) -> None:
        logger.error(
            "beat: entry %r cannot be scheduled: %s. It is quarantined (out of the schedule, "
            "kept in storage) and the other entries go on; fix and save it again to put it back.",
            name,
            reason,
        )
        plan.quarantine.append(Quarantine(name, reason))

    def _advance(
        self, name: str, entry: RedBeatSchedulerEntry, next_in: float | None
    ) -> EntryUpdate:
        """The entry's meta and score after this run (last_run_at = now, one more run);
        ``next_in`` is what ``is_due`` answered."""
        entry.last_run_at = entry.default_now()
        entry.total_run_count = (entry.total_run_count or 0) + 1
        return EntryUpdate(
            name, self._runtime.codec.encode_meta(entry.to_meta()), entry.score_after_run(next_in)
        )

    def _dispatch(self, due: Sequence[tuple[RedBeatSchedulerEntry, float]]) -> None:
        """Publish the due entries, each at its due time; a close() requested meanwhile (by
        ``celery beat``'s stop handler) is done once they are out."""
        if not due:
            return
        plugins = self._runtime.plugins
        observed = plugins.has_impls("redbeat_after_dispatch")
        if plugins.has_impls("redbeat_before_dispatch"):
            plugins.before_dispatch(self, [entry for entry, _ in due])
        self._dispatching = True
        try:
            self._publish_all(due, observed)
        finally:
            self._dispatching = False
            if self._close_deferred:
                self._close_deferred = False
                self.close()

    def _publish_all(
        self, due: Sequence[tuple[RedBeatSchedulerEntry, float]], observed: bool
    ) -> None:
        """``apply_async`` for each entry; one failed publish never stops the others."""
        plugins = self._runtime.plugins
        dispatched: list[Dispatched] = []
        producer = self.producer
        stop: BaseException | None = None
        for index, (entry, due_at) in enumerate(due):
            # Prepared ahead (prepare_ahead): never published before its due time. A loop, as
            # sleep keeps the monotonic clock and the due time is on the wall clock.
            try:
                while stop is None and (early := due_at - time.time()) > 0:
                    time.sleep(early)
            except (SystemExit, KeyboardInterrupt) as exc:
                stop = self._stop_after_publishing(
                    exc, stop, f"{due_at - time.time():.3f}s before a due time", len(due) - index
                )
            logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
            try:
                result = self.apply_async(entry, producer=producer, advance=False)
            except (SystemExit, KeyboardInterrupt) as exc:
                stop = self._stop_after_publishing(
                    exc,
                    stop,
                    f"while publishing {entry.name!r} (it may not have been sent)",
                    len(due) - index - 1,
                )
                continue
            except Exception as exc:
                logger.exception("beat: cannot publish %r: %s", entry.name, exc)
                plugins.dispatch_failed(self, entry, exc)
                continue
            if observed:
                dispatched.append(Dispatched(entry, due_at, time.time(), result))
        if observed:
            plugins.after_dispatch(self, dispatched)
        if stop is not None:
            raise stop  # the stop that arrived mid-dispatch, now that no committed run is lost

    def _stop_after_publishing(
        self, exc: BaseException, earlier: BaseException | None, where: str, remaining: int
    ) -> BaseException:
        """A stop (SIGTERM, Ctrl-C: ``SystemExit``/``KeyboardInterrupt``) arrived during
        dispatch. Under at-most-once the runs being dispatched are committed, so stopping now
        would lose them: the rest are published first (at once, at most prepare_ahead early),
        and the stop is returned to be raised after. Under at-least-once nothing is committed
        yet and the next leader runs them, so it is raised at once; so is a second stop, which
        asks to stop now whatever is lost."""
        if self.config.delivery != "at-most-once" or earlier is not None:
            raise exc
        logger.warning(
            "beat: stopping %s; publishing the tick's %d remaining entries first, as their runs "
            "are committed (stop again to stop at once)",
            where,
            remaining,
        )
        return exc

    def _sleep_for(self, claim: ClaimResult, updates: Sequence[EntryUpdate]) -> float:
        """Seconds until the earliest due time known, capped by the lock renewal and
        ``beat_max_loop_interval``."""
        candidates = [u.score for u in updates if u.score is not None]
        if claim.next_due is not None:
            candidates.append(claim.next_due)
        cap = self.max_interval
        if self._lock().fence is not None:
            cap = min(cap, self.config.lock_renew_interval)
        if not candidates:
            return cap
        wake = min(candidates) - self.config.prepare_ahead
        return max(0.0, min(wake - time.time(), cap))

    # ----------------------------------------------------------------- failures

    def _lost_lock(self, reason: str) -> float:
        logger.warning("beat: lost the lock (%s); this beat is now a standby", reason)
        self._lock().forget()
        self._runtime.plugins.lock_lost(self, reason)
        return self._report_idle_tick(self.config.lock_poll_interval)

    def _unreachable(self, exc: Exception) -> float:
        """Storage is down: keep the loop alive, and step down once the lock must have lapsed."""
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
            logger.error("beat: storage unreachable: %s; retrying", exc)
        lock = self._lock()
        fence = lock.fence
        if lock.held and fence is not None and now - self._last_fence_ok > fence.ttl:
            return self._lost_lock("unreachable")
        return self._report_idle_tick(self.config.lock_poll_interval, leader=lock.held)

    def _reachable(self) -> None:
        if self._unreachable_since is not None:
            down = time.monotonic() - self._unreachable_since
            logger.warning("beat: storage reachable again after %.1fs", down)
            self._unreachable_since = None

    # ----------------------------------------------------------------- celery-redbeat API

    @property
    def schedule(self) -> dict[str, RedBeatSchedulerEntry]:
        """The entries due now plus the next one (what celery-redbeat's property returned).

        Read-only and not used by the tick; kept for code and tools that inspect it.
        """
        store = self._runtime.store
        entries: dict[str, RedBeatSchedulerEntry] = {}
        now = time.time()
        horizon = now + self.max_interval
        names = [n for n, s in store.scheduled(0, self.config.batch_size) if s <= horizon]
        for stored in store.load_many(names):
            if stored is None:
                continue
            try:
                entry = RedBeatSchedulerEntry.from_stored(stored, app=self.app)
            except EntryDecodeError:
                continue
            entries[entry.name] = entry
        return entries

    @schedule.setter
    def schedule(self, value: Any) -> None:  # Scheduler.__init__ assigns self.data, not this
        pass

    def reserve(self, entry: RedBeatSchedulerEntry) -> RedBeatSchedulerEntry:
        return next(entry)

    @property
    def info(self) -> str:
        lines = [f"       . {self._runtime.backend.describe()}"]
        if self.lock_key:
            lines.append(
                f"       . lock -> `{self.lock_key}` {humanize_seconds(self.lock_timeout)} "
                f"({self.lock_timeout}s)"
            )
        return "\n".join(lines)

    def close(self) -> None:
        """Release the lock at once so a standby takes over without waiting for it to expire.

        ``celery beat``'s SIGTERM/SIGINT handler closes the scheduler and then raises
        ``SystemExit`` in whatever the beat was doing. During a tick's publishes, closing would
        release the lock and the broker connection that the committed runs are still to be
        published with, so the close is done when the dispatch ends (see ``_dispatch``).
        """
        if self._dispatching:
            self._close_deferred = True
            return
        try:
            if self._started:  # reported once, though celery beat closes twice on SIGTERM
                self._started = False
                self._runtime.plugins.scheduler_stopped(self)
            if self.lock is not None and self.lock.held:
                logger.info("beat: releasing the lock")
                try:
                    self.lock.release()
                except StoreUnavailableError as exc:
                    logger.warning("beat: could not release the lock: %s", exc)
                self._runtime.plugins.lock_lost(self, "released")
        finally:
            try:
                super().close()
            finally:
                self._runtime.close()  # connections only: the store reconnects if used again
