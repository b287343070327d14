"""RedBeat's Celery scheduler: one class for every storage backend.

It keeps what only the scheduler can own: Celery's face (``tick()``, ``setup_schedule``,
``close``, celery-redbeat's API) and leadership (the lock, outages, stepping down). A tick is a
chain of steps, each in a module of its own:

claim (the store, one round trip) -> plan (:func:`~redbeat_core.planning.plan_tick`, pure) ->
decide (``redbeat_decide_runs``) -> settle (:func:`~redbeat_core.planning.settle`, pure) ->
commit (the store, one round trip) -> publish (:mod:`~redbeat_core.dispatch`) -> report.

At-most-once commits before publishing, at-least-once after. Observers about an outcome
(quarantined, skipped) are told once the commit made it true. Round trips per tick do not grow
with the number of entries due or stored: one when nothing is due, two otherwise. The beat then
sleeps until the next due time, capped so that the lock is renewed in time.

A standby (a beat that does not hold the lock) never blocks: its tick tries the lock once and
returns the poll interval, so Celery's beat loop, pidbox and ``inspect ping`` keep working.
The start-up sync of ``beat_schedule`` lives in :mod:`~redbeat_core.statics`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from celery.beat import Scheduler
from celery.utils.time import humanize_seconds

from redbeat_core import dispatch, statics
from redbeat_core.budget import PlanningBudget
from redbeat_core.config import RedBeatConfig
from redbeat_core.dispatch import Published
from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.exceptions import BrokenStoreError, EntryDecodeError, StoreUnavailableError
from redbeat_core.history import HistoryStore, RunRecord
from redbeat_core.idempotency import with_task_ids
from redbeat_core.lead import PrepareCost
from redbeat_core.locks import beat_identity
from redbeat_core.manual import ManualRuns, RunRequestStore, take_requests
from redbeat_core.overlap import PLUGIN_NAME as OVERLAP_PLUGIN
from redbeat_core.planning import Plan, Settled, TickTime, any_policy, plan_tick, settle
from redbeat_core.plugins import PluginManager
from redbeat_core.policies import IDEMPOTENT_SETTING
from redbeat_core.policies import PLUGIN_NAME as POLICIES_PLUGIN
from redbeat_core.recorder import Author, RunRecorder
from redbeat_core.runs import Dispatched, DueRuns
from redbeat_core.runtime import Runtime, get_runtime
from redbeat_core.stops import held_stops
from redbeat_core.summary import (
    DEFAULT_SUMMARY_INTERVAL,
    SUMMARY_SETTING,
    LeaderSummary,
    StandbyNotes,
)
from redbeat_core.typing import ClaimResult, EntryUpdate, Lock, ScheduleStore, WaitsForRelease

__all__ = ["Dispatched", "RedBeatScheduler"]

logger = logging.getLogger("celery.beat")

#: Seconds of difference between local and storage clocks worth a warning.
MAX_CLOCK_SKEW = 1.0
#: The longest wait before an entry whose publish keeps failing is tried again (at-least-once).
MAX_PUBLISH_BACKOFF = 60.0
#: How much of the lease a beat leaves unused before it stops publishing (server and local
#: clocks run at slightly different rates, and the server extended the lease after we sent).
LEASE_MARGIN = 0.5

#: Whether this process has frozen its start-up objects (see ``_freeze_startup_objects``).
_gc_frozen = False


def _utc(seconds: float) -> str:
    """Unix seconds as a UTC time an operator reads in a log: ``2026-12-05 07:46:07.008 UTC``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


class RedBeatScheduler(Scheduler):  # type: ignore[misc]
    """Celery beat scheduler keeping its schedule in the storage its URL names (any registered
    backend).

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
        #: What the constructor (and later assignments to ``lock_key``/``lock_timeout``) set
        #: over the settings. None is "not given", as in celery-redbeat's constructor.
        self._overrides = {k: v for k, v in overrides.items() if v is not None}
        # Settings are read and checked here: a bad one stops start-up with its name.
        self._runtime: Runtime = get_runtime(app, **self._overrides)
        self._unreachable_since: float | None = None
        #: When the last fenced round trip that succeeded was sent (monotonic): the lease runs
        #: from about then (the server extended it when it ran the script, a little later).
        self._last_fence_ok: float = 0.0
        #: Consecutive failed publishes per entry (at-least-once retries them with backoff).
        self._publish_failures: dict[str, int] = {}
        self._started = False
        self._skew_warned = False
        #: Set while a tick publishes; a close() meanwhile waits for the end (see close()).
        self._dispatching = False
        self._close_deferred = False
        self._summary = LeaderSummary(
            self._runtime.config.settings.get(SUMMARY_SETTING, DEFAULT_SUMMARY_INTERVAL)
        )
        self._standby_notes = StandbyNotes()
        #: What preparing costs here, and the due time the next tick wakes ahead of (see
        #: _batch_for).
        self._prepare_cost = PrepareCost()
        self._woke_for: float | None = None
        self._recorder_cache: tuple[object, RunRecorder] | None = None
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
    def plugins(self) -> PluginManager:
        """The app's plugin manager (its hooks, typed)."""
        return self._runtime.plugins

    @property
    def lock_key(self) -> str | None:
        """The beat lock's key; None runs without one (a single beat). Assigning it before the
        first tick, as celery-redbeat code does (``scheduler.lock_key = None`` in tests),
        takes effect: the lock is rebuilt on the new key."""
        return self.config.lock_key

    @lock_key.setter
    def lock_key(self, value: str | None) -> None:
        self._relock(lock_key=value)

    @property
    def lock_timeout(self) -> float:
        """How long the lease lasts without renewal, in seconds. Assignable like
        :attr:`lock_key` (checked against the renew interval)."""
        return self.config.lock_timeout

    @lock_timeout.setter
    def lock_timeout(self, value: float) -> None:
        self._relock(lock_timeout=value)

    def _relock(self, **change: Any) -> None:
        """Re-read the settings with ``change`` over them and start again without a lock: a
        lease held under the old key or timeout is given up (a standby takes over at once),
        the next tick acquires under the new one."""
        if self.lock is not None:
            try:
                self.lock.release()
            except StoreUnavailableError:
                self.lock.forget()  # unreachable: the old lease lapses by itself
            self.lock = None
        self._overrides.update(change)
        self._runtime = get_runtime(self.app, **self._overrides)
        self.max_interval = self.config.max_interval

    def _lock(self) -> Lock:
        if self.lock is None:
            self.lock = self.plugins.make_lock(self.config, self._runtime.backend)
        return self.lock

    # ----------------------------------------------------------------- start-up

    def setup_schedule(self) -> None:
        """Sync ``beat_schedule`` into storage (:func:`~redbeat_core.statics.sync_statics`).
        Storage that cannot be reached stops start-up with an error saying where it looked and
        how to wait for it."""
        try:
            statics.sync_statics(self._runtime, self.Entry)
        except BrokenStoreError as exc:
            raise BrokenStoreError(
                f"beat cannot start: its storage ({self._runtime.backend.describe()}) refuses "
                f"to sync beat_schedule: {exc}"
            ) from exc
        except StoreUnavailableError as exc:
            reason = str(exc).rstrip(".")
            advice = f" {exc.hint}" if exc.hint else ""
            raise StoreUnavailableError(
                f"beat cannot start: its storage ({self._runtime.backend.describe()}) is "
                f"unreachable while syncing beat_schedule: {reason}. Start the server or fix the "
                f"storage URL ({self.config.url_setting}).{advice}",
                hint=exc.hint,
            ) from exc

    def update_from_dict(self, dict_: Mapping[str, Any]) -> None:
        """Save entries given as ``{name: {task, schedule, ...}}`` (celery-redbeat API)."""
        entries = [
            statics.build_entry(self.Entry, self.app, name, fields).to_stored()
            for name, fields in dict_.items()
        ]
        if entries:
            self._runtime.store.save_many(entries, keep_meta=True)

    # ----------------------------------------------------------------- the tick

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One scheduling pass. Returns the seconds to sleep before the next one."""
        if not self._started:
            self._started = True
            self._freeze_startup_objects()
            self.plugins.scheduler_started(scheduler=self)
        lock = self._lock()
        recorder = self._recorder
        history: list[RunRecord] = []
        try:
            if not lock.held and not self.try_acquire_lock():
                recorder.flush()  # what this beat recorded while it led
                return self._standby_tick()
            now = time.time()
            # Entries due within prepare_ahead are claimed and prepared now, published on time.
            horizon = now + self.config.prepare_ahead
            batch = self._batch_for(now)
            sent = time.monotonic()
            history = recorder.take()
            claim = self._claim(lock.fence, horizon, history, batch)
        except Exception as exc:  # any store error: see _unreachable
            recorder.give_back(history)
            return self._unreachable(exc)
        self._reachable()
        if not claim.owned:
            recorder.append(history)  # not written under a fence that no longer holds
            return self._lost_lock("expired")
        self._last_fence_ok = sent
        self._check_skew(claim.server_time, now)
        for item in claim.quarantined:
            self._report_quarantine(item.name, item.reason)
        busy = claim.entries or claim.requests
        interval = self._run_claim(claim, now, sent, batch) if busy else self._sleep_for(claim, ())
        if self._summary.due():
            self._log_summary()
        if self.plugins.tick:
            self.plugins.tick(
                scheduler=self, leader=True, due=len(claim.entries), next_wake=interval
            )
        return interval

    def _batch_for(self, now: float) -> int:
        """How many entries this tick claims: a full batch, or, when it woke ahead of a due
        time to prepare the entries due then, as many as it can prepare before it
        (:mod:`redbeat_core.lead`)."""
        woke_for, self._woke_for = self._woke_for, None
        batch = self.config.batch_size
        if woke_for is None or woke_for <= now:
            return batch
        return self._prepare_cost.early_batch(woke_for - now, batch)

    def _claim(
        self, fence: Any, horizon: float, history: list[RunRecord], batch: int
    ) -> ClaimResult:
        """The tick's claim, writing the last busy tick's run records with it."""
        store = self._runtime.store
        if not history:
            return store.claim_due(fence, horizon, batch)
        keeper = cast(HistoryStore, store)  # records are only built for one (RunRecorder)
        return keeper.claim_due(fence, horizon, batch, history=history, limits=self.config.history)

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
        sent = time.monotonic()
        if not lock.acquire():
            return False
        fence = lock.fence
        logger.info(
            "beat: acquired the lock%s; this beat now dispatches",
            f" (fencing epoch {fence.epoch})" if fence is not None else "",
        )
        self._last_fence_ok = sent
        self._standby_notes.forget()
        self._summary.reset()
        self.plugins.lock_acquired(scheduler=self, fence=fence)
        return True

    def _standby_tick(self) -> float:
        """A standby's pause until its next try: Celery's sleep, or (a lock that can tell) a
        wait that ends early when the leader releases the lease, so a graceful stop hands
        over in milliseconds rather than up to a poll interval."""
        self._reachable()
        self._standby_notes.seen(self.lock_key, getattr(self.lock, "holder_seen", None))
        interval = self.config.lock_poll_interval
        lock: object = self.lock
        if isinstance(lock, WaitsForRelease):
            interval = lock.wait_for_release(interval)
        return self._report_idle_tick(interval)

    def _log_summary(self) -> None:
        """The leader's periodic summary line; the entry count costs one command, every few
        minutes (none when the storage cannot be reached: the line says '?')."""
        try:
            entries: int | None = self._runtime.store.count()
        except StoreUnavailableError:
            entries = None
        self._summary.log(entries)

    def _report_idle_tick(self, interval: float, *, leader: bool = False) -> float:
        """Every tick is reported to ``redbeat_tick``: those that claimed nothing (a standby,
        a lost lock, an outage) too."""
        if self.plugins.tick:
            self.plugins.tick(scheduler=self, leader=leader, due=0, next_wake=interval)
        return interval

    def _run_claim(self, claim: ClaimResult, now: float, sent: float, batch: int) -> float:
        """Plan, decide, commit and publish the claimed entries, in the order the delivery
        mode sets: at-most-once commits first (nothing is published unless the commit, and so
        the fence, held), at-least-once publishes first (a failed commit means they run
        again)."""
        runtime = self._runtime
        config = self.config
        budget = PlanningBudget(config.entry_time_budget, total=config.lock_renew_interval / 2)
        with budget.planning():
            plan = plan_tick(
                claim.entries,
                app=self.app,
                codec=runtime.codec,
                time=TickTime(now=now, schedule_now=self.app.now()),
                entry_class=self.Entry,
                strict_tasks=config.unknown_task == "quarantine",
                budget=budget,
                defaults=runtime.policy_defaults,
            )
        settled = settle(plan, self._decide(plan, now), codec=runtime.codec)
        manual = self._take_requests(claim)
        settled = settled.with_manual(manual.runs)
        if config.settings.get(IDEMPOTENT_SETTING):
            settled = with_task_ids(settled, config.key_for)
        requested = [request.name for request in claim.requests]
        at_most_once = config.delivery == "at-most-once"
        recorder = self._recorder
        try:
            if at_most_once:
                with self._stops_held(len(settled.publish)):
                    if not self._commit(plan, settled, requested):
                        return self._lost_lock("expired")
                    self._report_stored(plan, settled)
                    self._prepare_cost.learn(time.monotonic() - sent, len(claim.entries))
                    published = self._dispatch(settled.publish, at_most_once=at_most_once)
                    # Inside the hold: a stop held meanwhile closes the beat, which writes them.
                    self._record_runs(recorder, settled, published, manual)
                published = published.without(settled.manual)
            else:
                self._prepare_cost.learn(time.monotonic() - sent, len(claim.entries))
                published = self._dispatch(settled.publish, at_most_once=at_most_once)
                self._record_runs(recorder, settled, published, manual)
                # A run-now whose publish failed stays requested: the next tick tries again.
                failed = set(published.failed_at) | set(published.unsent_at)
                retried = {settled.publish[i][0] for i in failed if i in settled.manual}
                requested = [name for name in requested if name not in retried]
                published = published.without(settled.manual)
                settled = settled.leave_due(self._retry_times(published))
                if not self._commit(plan, settled, requested):
                    return self._lost_lock("expired")
                self._report_stored(plan, settled)
        except StoreUnavailableError as exc:
            return self._unreachable(exc)
        self._count_failures(settled, published)
        not_sent = len(published.failed) + len(published.unsent)
        self._summary.add(
            dispatched=len(settled.publish) - not_sent,
            skipped=len(settled.skipped),
            late=published.late,
            failed=len(published.failed),
        )
        if len(claim.entries) >= batch or plan.unplanned:
            return 0.0  # more are due: claim (and so renew the lease) and go on at once
        return self._sleep_for(claim, settled.updates)

    @staticmethod
    def _stops_held(runs: int) -> contextlib.AbstractContextManager[None]:
        """At-most-once: from the commit that stores ``runs`` runs as run to their last
        publish, a stop signal waits (:func:`~redbeat_core.stops.held_stops`); lost runs
        otherwise. Nothing is held when there is nothing to publish."""
        if not runs:
            return contextlib.nullcontext()
        return held_stops(f"publishing the tick's {runs} committed runs")

    def _retry_times(self, published: Published) -> dict[str, float]:
        """When the runs that were not published are due again (at-least-once): a failed
        publish after a backoff that doubles with each failure of that entry in a row (1 s up
        to 60 s), one never tried (the lease or the broker) after a second."""
        now = time.time()
        retry = {name: now + 1.0 for name in published.unsent}
        for name in published.failed:
            failures = self._publish_failures.get(name, 0) + 1
            retry[name] = now + min(2.0 ** (failures - 1), MAX_PUBLISH_BACKOFF)
        return retry

    def _count_failures(self, settled: Settled, published: Published) -> None:
        for name in published.failed:
            self._publish_failures[name] = self._publish_failures.get(name, 0) + 1
        if self._publish_failures:
            for name, _, _ in settled.publish:
                self._publish_failures.pop(name, None)

    def _lease_ok(self) -> bool:
        """Whether this beat's lease is surely still running, by the local monotonic clock:
        less than the lease (less a margin for the server's clock) since the last fenced round
        trip that succeeded was sent. False means another beat may lead by now."""
        fence = self._lock().fence
        if fence is None:
            return True
        margin = min(LEASE_MARGIN, fence.ttl / 10)
        return time.monotonic() - self._last_fence_ok < fence.ttl - margin

    def _decide(self, plan: Plan, now: float) -> dict[int, Any]:
        """Ask ``redbeat_decide_runs`` which due runs to skip or postpone (nothing to ask, and
        no ``DueRuns`` built, when no plugin implements it)."""
        if not plan.runs or not self.plugins.decide_runs:
            return {}
        own = (POLICIES_PLUGIN, OVERLAP_PLUGIN)
        if self.plugins.decide_runs.implemented_only_by(*own) and not any_policy(plan):
            return {}  # only RedBeat's policies decide, and no run has one: Celery's behaviour
        runs = DueRuns([planned.run for planned in plan.runs], now=now)
        self.plugins.decide_runs(scheduler=self, runs=runs)
        return runs.decided

    @property
    def _recorder(self) -> RunRecorder:
        """The run history's recorder for the current store (rebuilt when the store changes,
        as after ``lock_key`` is assigned)."""
        store = self._runtime.store
        cached = self._recorder_cache
        if cached is None or cached[0] is not store:
            cached = self._recorder_cache = (
                store,
                RunRecorder.for_store(store, self.config.history),
            )
        return cached[1]

    def _author(self) -> Author:
        fence = self._lock().fence
        return Author(beat_identity(), fence.epoch if fence is not None else 0)

    def _take_requests(self, claim: ClaimResult) -> ManualRuns:
        """The run-now requests the claim returned, decoded (:mod:`redbeat_core.manual`)."""
        if not claim.requests:
            return ManualRuns()
        runtime = self._runtime
        return take_requests(
            claim.requests,
            app=self.app,
            codec=runtime.codec,
            clock=self.app.now,
            entry_class=self.Entry,
        )

    def _record_runs(
        self, recorder: RunRecorder, settled: Settled, published: Published, manual: ManualRuns
    ) -> None:
        """What the tick's runs became, held for the next claim to write."""
        if recorder.enabled and (settled.publish or settled.skipped or manual.dropped):
            author = self._author()
            recorder.hold(recorder.published_runs(settled, published, author))
            recorder.hold(recorder.dropped_requests(manual.dropped, author))

    def _commit(self, plan: Plan, settled: Settled, requests_done: Sequence[str] = ()) -> bool:
        if not settled.updates and not plan.quarantine and not requests_done:
            return True
        sent = time.monotonic()
        store = self._runtime.store
        fence = self._lock().fence
        if requests_done:  # the store returned requests: it is a RunRequestStore
            requester = cast(RunRequestStore, store)
            committed = requester.commit(
                fence, settled.updates, plan.quarantine, requests_done=requests_done
            )
        else:
            committed = store.commit(fence, settled.updates, plan.quarantine)
        if committed:
            self._last_fence_ok = sent
        return committed

    def _report_stored(self, plan: Plan, settled: Settled) -> None:
        """Log and report what the commit just made true: quarantines, skips, entries that
        left the schedule because they are gone or cannot be scheduled."""
        for name in plan.missing:
            logger.warning("beat: %s is scheduled but not stored; removed it", name)
        for item in plan.quarantine:
            self._report_quarantine(item.name, item.reason)
        for skipped in settled.skipped:
            decision = skipped.decision
            logger.info(
                "beat: %s the run of %r due at %s%s: %s (plugin %s)",
                "skipped" if decision.action == "skip" else "postponed",
                skipped.entry.name,
                _utc(skipped.due_at),
                "" if decision.until is None else f" to {_utc(decision.until)}",
                decision.reason,
                decision.plugin or "?",
            )
        if settled.skipped and self.plugins.runs_skipped:
            self.plugins.runs_skipped(scheduler=self, skipped=settled.skipped)

    def _report_quarantine(self, name: str, reason: str) -> None:
        logger.error(
            "beat: entry %r cannot be scheduled: %s. It is quarantined (out of the schedule, "
            "kept in storage) and the other entries go on; fix and save it again to put it back.",
            name,
            reason,
        )
        self.plugins.entry_quarantined(scheduler=self, name=name, reason=reason)

    def _dispatch(
        self, due: Sequence[tuple[str, RedBeatSchedulerEntry, float]], *, at_most_once: bool
    ) -> Published:
        """Publish the due entries (:func:`~redbeat_core.dispatch.publish`); a close()
        requested meanwhile (by ``celery beat``'s stop handler) is done once they are out."""
        if not due:
            return Published()
        if self.plugins.before_dispatch:
            self.plugins.before_dispatch(scheduler=self, entries=[entry for _, entry, _ in due])
        self._dispatching = True
        try:
            return dispatch.publish(self, due, at_most_once=at_most_once, lease_ok=self._lease_ok)
        finally:
            self._dispatching = False
            if self._close_deferred:
                self._close_deferred = False
                self.close()

    def _sleep_for(self, claim: ClaimResult, updates: Sequence[EntryUpdate]) -> float:
        """Seconds until the earliest due time known, capped by the lock renewal and
        ``beat_max_loop_interval``."""
        candidates = [u.score for u in updates if u.score is not None]
        if claim.next_due is not None:
            candidates.append(claim.next_due)
        cap = self.max_interval
        if self._lock().fence is not None or self._recorder.pending:
            # A leader renews its lease; run records held wait for the next claim no longer.
            cap = min(cap, self.config.lock_renew_interval)
        if not candidates:
            return cap
        self._woke_for = min(candidates)
        wake = self._woke_for - self.config.prepare_ahead
        return max(0.0, min(wake - time.time(), cap))

    # ----------------------------------------------------------------- failures

    def _lost_lock(self, reason: str) -> float:
        logger.warning("beat: lost the lock (%s); this beat is now a standby", reason)
        self._lock().forget()
        self.plugins.lock_lost(scheduler=self, reason=reason)
        return self._report_idle_tick(self.config.lock_poll_interval)

    def _unreachable(self, exc: Exception) -> float:
        """Storage is down, refuses the work or raised: keep the loop alive, say so once per
        episode, and step down once the lock must have lapsed. No storage error, whatever the
        backend raises, escapes the beat loop (a beat that died would hand the same broken
        data to the next beat, which would die the same way)."""
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
            if isinstance(exc, BrokenStoreError):
                logger.error("beat: the storage refuses the tick: %s", exc)
            elif isinstance(exc, StoreUnavailableError):
                logger.error("beat: storage unreachable: %s; retrying", exc)
            else:
                logger.error(
                    "beat: the storage raised %s: %s; this beat keeps ticking and retries",
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
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
        """The entries due now plus the next one due within ``max_interval``: what
        celery-redbeat's property returned (it read them to decide how long to sleep).

        Read-only and not used by the tick; kept for code that inspects it. Entries that
        cannot be read are left out (the tick quarantines them). To list the whole schedule,
        page through ``store.scheduled()``.
        """
        store = self._runtime.store
        now = time.time()
        horizon = now + self.max_interval
        page = self.config.batch_size
        names: list[str] = []
        start = 0
        while True:
            scored = store.scheduled(start, start + page - 1)
            for name, score in scored:
                if score > now:  # the first not yet due ends the list, if soon enough
                    if score <= horizon:
                        names.append(name)
                    return self._entries(names)
                names.append(name)
            if len(scored) < page:
                return self._entries(names)
            start += page

    @schedule.setter
    def schedule(self, value: Any) -> None:  # Scheduler.__init__ assigns self.data, not this
        pass

    def _entries(self, names: list[str]) -> dict[str, RedBeatSchedulerEntry]:
        entries: dict[str, RedBeatSchedulerEntry] = {}
        for stored in self._runtime.store.load_many(names):
            if stored is None:
                continue
            try:
                entry = RedBeatSchedulerEntry.from_stored(stored, app=self.app)
            except EntryDecodeError:
                continue
            entries[entry.name] = entry
        return entries

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
            if self._recorder_cache is not None:
                self._recorder_cache[1].flush()  # the last tick's run records
            if self._started:  # reported once, though celery beat closes twice on SIGTERM
                self._started = False
                self.plugins.scheduler_stopped(scheduler=self)
            if self.lock is not None and self.lock.held:
                logger.info("beat: releasing the lock")
                try:
                    self.lock.release()
                except StoreUnavailableError as exc:
                    logger.warning("beat: could not release the lock: %s", exc)
                self.plugins.lock_lost(scheduler=self, reason="released")
        finally:
            try:
                super().close()
            finally:
                self._runtime.close()  # connections only: the store reconnects if used again
