"""The backend contract suite: what every ScheduleStore and Lock must do.

A backend's test module subclasses these classes and provides fixtures; every test then runs
against that backend, unchanged::

    from redbeat_core.testing.contract import LockContract, Outage, StoreContract

    @pytest.fixture
    def store(my_server):
        return MyStore(...)                      # empty, isolated per test

    @pytest.fixture
    def make_store(my_server):
        return lambda: MyStore(...)              # another store on the same storage

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_outage(self, my_private_server):
            store = MyStore(my_private_server.url)
            return Outage(store, begin=my_private_server.stop, end=my_private_server.start)

    class TestMyLock(LockContract):
        @pytest.fixture
        def make_lock(self, store):
            return lambda ttl: MyLock(..., ttl=ttl)   # every call: a new contender

Each class declares the fixtures it needs in ``fixtures`` (see :data:`STORE`,
:data:`MAKE_STORE`, :data:`STORE_OUTAGE`, :data:`MAKE_LOCK`): a missing one fails the test
with its name and what it must return. Module-level and class-level fixtures both work.

Optional capabilities are boolean class attributes, True by default where the protocols
promise them; a test that needs one is skipped, naming the flag, when it is False:
``supports_threads``, ``supports_fork`` and ``supports_outage`` (``StoreContract``),
``supports_fencing_epoch`` (``LockContract``).

Beyond the single-store cases, the store contract races two stores on the same storage (the
start-up sync of two beats started at once, saves of the same names), runs a real
``RedBeatScheduler`` on the store through an outage, takes the storage itself away when the
backend can (``store_outage``), and uses the store from a second thread and from a forked
child.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
import pytest

from redbeat_core.audit import AuditRecord, AuditStore, decode_audit
from redbeat_core.exceptions import StoreUnavailableError
from redbeat_core.history import HistoryLimits, HistoryStore, RunRecord, decode_records
from redbeat_core.manual import RunRequestStore
from redbeat_core.running import Reservation, Reserved, RunTracker
from redbeat_core.testing.concurrency import fork_and_wait, run_together
from redbeat_core.testing.declared import DeclaredFixture, check_declared, needs
from redbeat_core.testing.interruptible import InterruptibleStore
from redbeat_core.testing.served import scheduler_app
from redbeat_core.typing import (
    EntryUpdate,
    Fence,
    Lock,
    Quarantine,
    ScheduleStore,
    StoredEntry,
)

__all__ = [
    "MAKE_LOCK",
    "MAKE_STORE",
    "NOW",
    "STORE",
    "STORE_OUTAGE",
    "LockContract",
    "Outage",
    "StoreContract",
    "entry",
    "poll",
]

NOW = 1_700_000_000.0
#: Entries each writer of a race writes: enough that a store writing them one by one is still
#: writing when the other starts, so a write that is not atomic shows.
RACE_ENTRIES = 100

# ----------------------------------------------------------------------------- declared fixtures

STORE = DeclaredFixture(
    "store",
    "an empty ScheduleStore, isolated per test (a flushed server, a new file, a unique prefix)",
)
MAKE_STORE = DeclaredFixture(
    "make_store",
    "a callable () -> ScheduleStore returning, at every call, another store on the same storage "
    "as 'store' with connections of its own, as a second beat process would have one; the first "
    "call may be the first use of the storage, and two calls at once must both work (close what "
    "it made when the test ends)",
)
STORE_OUTAGE = DeclaredFixture(
    "store_outage",
    "an Outage(store, begin, end): a store on storage that begin() makes unreachable (stop the "
    "server, lock the file) and end() makes reachable again with its data",
    flag="supports_outage",
)
MAKE_LOCK = DeclaredFixture(
    "make_lock",
    "a callable (ttl: float) -> Lock returning, at every call, a new contender for the same "
    "lock on the storage of 'store'",
)


@attrs.frozen
class Outage:
    """Storage that a test can take away and give back: what ``store_outage`` returns.

    :param store: a store on that storage (it may be another than the ``store`` fixture's,
        e.g. on a private server the test may stop).
    :param begin: makes the storage unreachable: stop or kill the server, hold the database's
        write lock, cut the network. The store's calls must then raise
        :class:`~redbeat_core.exceptions.StoreUnavailableError` (and nothing else) once the
        backend's own retries gave up, so keep them short in this fixture.
    :param end: makes the storage reachable again, with the data it held (a server restarted
        with persistence); ``store`` must work again without being rebuilt.
    """

    store: ScheduleStore
    begin: Callable[[], None]
    end: Callable[[], None]


# ----------------------------------------------------------------------------- helpers


def entry(name: str, score: float | None, *, meta: str | None = '{"m": 1}') -> StoredEntry:
    """A stored entry with recognisable JSON parts (the store must not interpret them)."""
    return StoredEntry(
        name=name,
        definition=f'{{"name": "{name}", "task": "t"}}',
        meta=meta,
        policy=None,
        score=score,
    )


def poll(condition: Callable[[], bool], *, timeout: float = 10.0, every: float = 0.02) -> bool:
    """Wait for ``condition`` with a deadline (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def _by(name: str, writer: int) -> StoredEntry:
    """An entry as ``writer`` saves it: every part says who wrote it (the score too: writer
    ``w`` schedules at ``NOW + w``), so a mix of two writes in one entry shows."""
    mark = f'"writer": {writer}'
    return StoredEntry(
        name=name,
        definition=f'{{"name": "{name}", "task": "t", {mark}}}',
        meta=f"{{{mark}}}",
        policy=f"{{{mark}}}",
        score=NOW + writer,
    )


def _run(name: str, due: int, *, outcome: str = "sent") -> RunRecord:
    """A run record for the history cases: due ``due`` seconds after NOW."""
    return RunRecord(
        name=name,
        outcome=outcome,  # type: ignore[arg-type]
        due_at=NOW + due,
        at=NOW + due + 0.01,
        task_id=f"t-{name}-{due}",
        beat="host:1",
        epoch=3,
        reason="r" if outcome != "sent" else None,
    )


def _runs(texts: Sequence[str]) -> list[tuple[str, int]]:
    """(name, due) of each stored record, in the order read."""
    return [(r.name, round(r.due_at - NOW)) for r in decode_records(texts)]


def _writer_of(stored: StoredEntry) -> int:
    """Who wrote ``stored`` whole; fails when its parts come from different writes."""
    parts = {
        "definition": json.loads(stored.definition or "{}").get("writer"),
        "policy": json.loads(stored.policy or "{}").get("writer"),
        "score": None if stored.score is None else round(stored.score - NOW),
    }
    writers = set(parts.values())
    assert len(writers) == 1, f"entry {stored.name!r} mixes two writes: {parts}"
    (writer,) = writers
    assert isinstance(writer, int), f"entry {stored.name!r} was not written whole: {parts}"
    return writer


def _answers(store: ScheduleStore, name: str) -> bool:
    """Whether the store takes a write and reads it back (False while it is unreachable)."""
    try:
        store.save(entry(name, NOW))
        return store.load(name) is not None
    except StoreUnavailableError:
        return False


@contextmanager
def _published() -> Iterator[list[str]]:
    """The names of the tasks published while the block runs (Celery's own signal)."""
    from celery.signals import before_task_publish

    tasks: list[str] = []

    def record(headers: Any = None, **_: Any) -> None:
        tasks.append(str((headers or {}).get("task")))

    before_task_publish.connect(record, weak=False)
    try:
        yield tasks
    finally:
        before_task_publish.disconnect(record)


def _save_due(app: Any, task: str) -> str:
    """Save an interval entry (every minute) that last ran two minutes ago: due now."""
    from celery.schedules import schedule

    from redbeat_core.entry import RedBeatSchedulerEntry

    name = f"contract-{uuid.uuid4().hex[:8]}"
    item = RedBeatSchedulerEntry(name, task, schedule(60.0), app=app)
    item.last_run_at = datetime.now(UTC) - timedelta(minutes=2)
    item.save()
    return name


def _every_call(store: ScheduleStore) -> list[tuple[str, Callable[[], object]]]:
    """One call of each ScheduleStore method but ``close``, for the outage cases."""
    return [
        ("claim_due", lambda: store.claim_due(None, NOW, 10)),
        ("commit", lambda: store.commit(None, [EntryUpdate("kept", '{"m": 2}', NOW)])),
        ("save", lambda: store.save(entry("x", NOW))),
        ("save_many", lambda: store.save_many([entry("y", NOW)])),
        ("replace_statics", lambda: store.replace_statics([entry("z", NOW)], [], statics=["z"])),
        ("update_meta", lambda: store.update_meta("kept", '{"m": 3}', NOW)),
        ("delete", lambda: store.delete("gone")),
        ("delete_many", lambda: store.delete_many(["gone"])),
        ("load", lambda: store.load("kept")),
        ("load_many", lambda: store.load_many(["kept"])),
        ("rank", lambda: store.rank("kept")),
        ("scheduled", store.scheduled),
        ("count", store.count),
        ("statics", store.statics),
        ("set_statics", lambda: store.set_statics(["z"])),
        ("quarantined", store.quarantined),
    ]


def _refused_calls(store: ScheduleStore, when: str) -> list[str]:
    """Call every method (``_every_call``); the names of those that raised
    ``StoreUnavailableError``. Any other error fails the test, naming the method."""
    refused: list[str] = []
    for method, call in _every_call(store):
        try:
            call()
        except StoreUnavailableError:
            refused.append(method)
        except Exception as exc:
            pytest.fail(
                f"{method} raised {type(exc).__module__}.{type(exc).__qualname__} ({exc}) "
                f"{when}; a backend must raise redbeat_core.exceptions.StoreUnavailableError, "
                "the one storage error the scheduler survives"
            )
    return refused


def _sync_statics(store: ScheduleStore, writer: int, wanted: list[str]) -> Callable[[], None]:
    """What a beat's start-up does to the store: read the previous statics, then replace them
    with ``wanted`` (every entry marked as ``writer``'s)."""

    def sync() -> None:
        removed = sorted(store.statics() - set(wanted))
        store.replace_statics([_by(name, writer) for name in wanted], removed, statics=wanted)

    return sync


def _save_one_by_one(store: ScheduleStore, names: list[str], writer: int) -> None:
    for name in names:
        store.save(_by(name, writer))


def _save_all_at_once(store: ScheduleStore, names: list[str], writer: int) -> None:
    store.save_many([_by(name, writer) for name in names])


def _start_beat(make_store: Callable[[], ScheduleStore], beat_schedule: dict[str, Any]) -> None:
    """What a beat process does at start-up: connect to the storage, then build the scheduler
    (which syncs ``beat_schedule`` into the store); then stop."""
    from redbeat_core.scheduler import RedBeatScheduler

    with scheduler_app(make_store(), beat_schedule=beat_schedule) as app:
        RedBeatScheduler(app=app).close()


def _race_for(contenders: list[Lock]) -> list[bool]:
    """Every contender tries the lock at the same moment; who got it."""
    won = [False] * len(contenders)

    def take(index: int) -> None:
        won[index] = contenders[index].acquire()

    run_together([functools.partial(take, i) for i in range(len(contenders))])
    return won


# ----------------------------------------------------------------------------- the store


class StoreContract:
    """What every :class:`~redbeat_core.typing.ScheduleStore` must do.

    Fixtures (see :attr:`fixtures`): ``store`` and ``make_store``, required; ``store_outage``,
    unless ``supports_outage`` is False.
    """

    fixtures: ClassVar[tuple[DeclaredFixture, ...]] = (STORE, MAKE_STORE, STORE_OUTAGE)

    #: The store may be used from several threads at once: the protocol promises it (a web
    #: process's threads save entries while its other threads read them).
    supports_threads: ClassVar[bool] = True
    #: The store keeps working in a child forked after it was used, and in the parent: the
    #: protocol promises it (prefork workers and web servers fork after the app was built).
    supports_fork: ClassVar[bool] = True
    #: The test can make the storage unreachable (fixture ``store_outage``), to check that the
    #: store reports it as ``StoreUnavailableError`` and recovers.
    supports_outage: ClassVar[bool] = True
    #: How many times each race runs: one run proves little about an interleaving. Raise it
    #: to hunt a rare one.
    race_rounds: ClassVar[int] = 10

    @pytest.fixture(autouse=True)
    def _declared_fixtures(self, request: pytest.FixtureRequest) -> None:
        check_declared(self, request, self.fixtures)

    # ------------------------------------------------------------------ save / load

    def test_is_a_schedule_store(self, store: ScheduleStore) -> None:
        assert isinstance(store, ScheduleStore)

    def test_load_missing_is_none(self, store: ScheduleStore) -> None:
        assert store.load("nope") is None
        assert store.load_many(["nope", "neither"]) == [None, None]

    def test_save_then_load_round_trips_every_part(self, store: ScheduleStore) -> None:
        stored = StoredEntry("a", '{"d": "é"}', '{"m": 1}', '{"p": true}', NOW + 1.5)
        store.save(stored)
        loaded = store.load("a")
        assert loaded is not None
        assert (loaded.definition, loaded.meta, loaded.policy) == (
            '{"d": "é"}',
            '{"m": 1}',
            '{"p": true}',
        )
        assert loaded.score == pytest.approx(NOW + 1.5, abs=1e-3)

    def test_load_many_keeps_order_and_gaps(self, store: ScheduleStore) -> None:
        store.save_many([entry("a", NOW), entry("b", NOW + 1)])
        found = store.load_many(["b", "missing", "a"])
        assert [e.name if e else None for e in found] == ["b", None, "a"]

    def test_save_keeps_stored_meta_unless_told(self, store: ScheduleStore) -> None:
        store.save(entry("a", NOW, meta='{"v": 1}'))
        store.save(entry("a", NOW, meta='{"v": 2}'))
        assert store.load("a").meta == '{"v": 1}'  # type: ignore[union-attr]
        store.save(entry("a", NOW, meta='{"v": 3}'), keep_meta=False)
        assert store.load("a").meta == '{"v": 3}'  # type: ignore[union-attr]

    def test_score_none_keeps_entry_out_of_schedule(self, store: ScheduleStore) -> None:
        store.save(entry("a", NOW))
        store.save(entry("a", None))
        assert store.load("a") is not None
        assert store.rank("a") is None
        assert store.count() == 0
        assert list(store.claim_due(None, NOW + 100, 10).entries) == []

    def test_update_meta_sets_meta_and_score(self, store: ScheduleStore) -> None:
        store.save(entry("a", NOW))
        store.update_meta("a", '{"v": 9}', NOW + 60)
        loaded = store.load("a")
        assert loaded is not None
        assert loaded.meta == '{"v": 9}'
        assert loaded.score == pytest.approx(NOW + 60, abs=1e-3)

    def test_delete_removes_everything(self, store: ScheduleStore) -> None:
        store.save_many([entry("a", NOW), entry("b", NOW), entry("c", NOW)])
        store.delete("a")
        store.delete_many(["b", "never-existed"])
        assert store.load_many(["a", "b", "c"])[:2] == [None, None]
        assert [n for n, _ in store.scheduled()] == ["c"]
        store.delete("a")  # deleting twice is fine

    def test_names_lists_every_entry_scheduled_or_not(self, store: ScheduleStore) -> None:
        """``names()``, optional: every stored entry, also the disabled and finished ones the
        schedule does not hold (``redbeat list`` and ``Schedule.names`` use it; without it they
        show only scheduled and quarantined entries)."""
        lister = getattr(store, "names", None)
        if lister is None:
            pytest.skip(
                f"{type(store).__name__} has no names(): `redbeat list` shows only scheduled "
                "and quarantined entries; implement names() to list the others"
            )
        store.save_many([entry("on", NOW), entry("off", None), entry("also", NOW + 5)])
        assert sorted(lister()) == ["also", "off", "on"]
        store.delete("on")
        assert sorted(lister()) == ["also", "off"]

    # ------------------------------------------------------------------ run history

    def _history_store(self, store: ScheduleStore) -> HistoryStore:
        if not isinstance(store, HistoryStore):
            pytest.skip(
                f"{type(store).__name__} keeps no run history (HistoryStore): `redbeat history` "
                "and Schedule.history() show nothing; implement it to record runs"
            )
        return store

    def test_history_rides_on_the_claim_newest_first(self, store: ScheduleStore) -> None:
        """A :class:`~redbeat_core.history.HistoryStore` writes the last tick's records with
        the next claim and reads them back newest first, per entry and for the whole
        schedule; the claim claims as it would without them."""
        keeper = self._history_store(store)
        store.save_many([entry("a", NOW), entry("b", NOW + 60)])
        claim = keeper.claim_due(None, NOW, 10, history=[_run("a", 1), _run("b", 1)])
        assert [e.name for e in claim.entries] == ["a"]
        assert claim.next_due == pytest.approx(NOW + 60, abs=1e-3)
        keeper.claim_due(None, NOW, 10, history=[_run("a", 2)])
        assert _runs(keeper.history("a", 10)) == [("a", 2), ("a", 1)]
        assert _runs(keeper.history("b", 10)) == [("b", 1)]
        assert _runs(keeper.history(None, 10)) == [("a", 2), ("b", 1), ("a", 1)]
        assert _runs(keeper.history(None, 2)) == [("a", 2), ("b", 1)]
        assert keeper.history("never-ran", 10) == []

    def test_history_is_trimmed_to_its_limits(self, store: ScheduleStore) -> None:
        """Each entry keeps its newest ``per_entry`` records and the schedule its newest
        ``total``, whatever the other keeps."""
        keeper = self._history_store(store)
        store.save_many([entry("a", NOW), entry("b", NOW)])
        limits = HistoryLimits(per_entry=2, total=3)
        for due in range(1, 5):
            keeper.claim_due(None, NOW, 10, history=[_run("a", due), _run("b", due)], limits=limits)
        assert _runs(keeper.history("a", 10)) == [("a", 4), ("a", 3)]
        assert _runs(keeper.history(None, 10)) == [("b", 4), ("a", 4), ("b", 3)]
        keeper.append_history([_run("b", 5, outcome="failed")], limits)
        assert _runs(keeper.history("b", 10)) == [("b", 5), ("b", 4)]
        failed = decode_records(keeper.history("b", 1))[0]
        assert (failed.outcome, failed.reason, failed.task_id) == ("failed", "r", "t-b-5")

    def test_deleting_an_entry_deletes_its_history(self, store: ScheduleStore) -> None:
        keeper = self._history_store(store)
        store.save_many([entry("gone", NOW), entry("kept", NOW)])
        keeper.append_history([_run("gone", 1), _run("kept", 1)], HistoryLimits())
        store.delete("gone")
        assert keeper.history("gone", 10) == []
        assert _runs(keeper.history("kept", 10)) == [("kept", 1)]
        # the schedule's history keeps what the entry did until it is pushed out
        assert ("gone", 1) in _runs(keeper.history(None, 10))

    # ------------------------------------------------------------------ the audit log

    def test_the_audit_log_keeps_the_newest_changes(self, store: ScheduleStore) -> None:
        """An :class:`~redbeat_core.audit.AuditStore` reads its records back newest first,
        trimmed to the limit given with each write."""
        if not isinstance(store, AuditStore):
            pytest.skip(f"{type(store).__name__} keeps no audit log: `redbeat audit` is empty")
        for i in range(4):
            change = AuditRecord(at=NOW + i, by="me@host", action="add", names=(f"e{i}",))
            store.append_audit([change], 3)
        found = decode_audit(store.audit(10))
        assert [(r.names, r.at) for r in found] == [
            (("e3",), NOW + 3),
            (("e2",), NOW + 2),
            (("e1",), NOW + 1),
        ]
        assert len(store.audit(2)) == 2

    # ------------------------------------------------------------------ run tracking

    def _tracker(self, store: ScheduleStore) -> RunTracker:
        if not isinstance(store, RunTracker):
            pytest.skip(
                f"{type(store).__name__} records no runs (RunTracker): entries with an overlap "
                "policy (skip, buffer_one) are published as with overlap 'allow'"
            )
        return store

    def test_a_run_is_reserved_only_while_none_is_queued_or_running(
        self, store: ScheduleStore
    ) -> None:
        """A :class:`~redbeat_core.running.RunTracker` reserves nothing without a live
        tracker; with one, a run is reserved (recorded as queued) only while the entry has no
        queued or running run, counting the earlier runs of the same call; a started run moves
        from queued to running, a finished one is neither."""
        tracker = self._tracker(store)
        first = Reservation("e", "t1", "skip", 60)
        assert tracker.reserve_runs([first]) is None
        tracker.tracker_alive("worker-1", 60)
        second = Reservation("e", "t2", "buffer_one", 60)
        assert tracker.reserve_runs([first, second]) == [
            Reserved(True, 0, 0),
            Reserved(False, 1, 0),
        ]
        tracker.run_started("e", "t1", 60)
        assert tracker.reserve_runs([second]) == [Reserved(False, 0, 1)]
        assert tracker.reserve_runs([Reservation("other", "o1", "skip", 60)]) == [
            Reserved(True, 0, 0)
        ]
        tracker.run_finished("e", "t1")
        assert tracker.reserve_runs([second]) == [Reserved(True, 0, 0)]

    def test_tracked_runs_stop_counting_after_their_lease(self, store: ScheduleStore) -> None:
        """A run whose worker stopped renewing it, a queued run no worker started, and a
        tracker that stopped saying so all lapse: nothing blocks an entry past its lease."""
        tracker = self._tracker(store)
        tracker.tracker_alive("worker-1", 60)
        tracker.run_started("dead", "t1", 0.2)
        assert tracker.reserve_runs([Reservation("lost", "m1", "skip", 0.2)]) == [
            Reserved(True, 0, 0)
        ]
        tracker.run_started("renewed", "t2", 0.2)
        tracker.renew_runs([("renewed", "t2")], 60)
        deadline = time.monotonic() + 5
        probe = [Reservation(n, f"p-{n}", "skip", 60) for n in ("dead", "lost", "renewed")]
        while True:
            found = tracker.reserve_runs(probe[:2])
            if found == [Reserved(True, 0, 0), Reserved(True, 0, 0)]:
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.02)  # polling interval; the deadline decides
        assert tracker.reserve_runs(probe[2:]) == [Reserved(False, 0, 1)]
        tracker.tracker_alive("worker-1", 0.2)
        while tracker.reserve_runs([Reservation("x", "y", "skip", 60)]) is not None:
            assert time.monotonic() < deadline + 5
            time.sleep(0.02)  # polling interval; the deadline decides

    # ------------------------------------------------------------------ run now

    def _request_store(self, store: ScheduleStore) -> RunRequestStore:
        if not isinstance(store, RunRequestStore):
            pytest.skip(
                f"{type(store).__name__} takes no run-now requests (RunRequestStore): "
                "`redbeat run` and Schedule.run_now() refuse with a message"
            )
        return store

    def test_a_run_request_is_claimed_with_its_entry_until_done(self, store: ScheduleStore) -> None:
        """A request comes back from every claim, with the entry as stored and who asked,
        whatever the entry's own due time, until a commit marks it done; the entry's schedule
        is untouched."""
        asker = self._request_store(store)
        store.save(entry("job", NOW + 3600))
        asker.request_run("job", "ops@host", NOW - 1)
        asker.request_run("job", "ops@host", NOW - 1)  # asked twice: one request
        for _ in range(2):
            claim = store.claim_due(None, NOW, 10)
            assert list(claim.entries) == []
            (request,) = claim.requests
            assert (request.name, request.by) == ("job", "ops@host")
            assert request.requested_at == pytest.approx(NOW - 1, abs=1e-3)
            assert request.stored is not None
            assert request.stored.definition == entry("job", None).definition
        assert asker.commit(None, [], requests_done=["job"])
        assert list(store.claim_due(None, NOW, 10).requests) == []
        ((name, score),) = store.scheduled()
        assert name == "job"
        assert score == pytest.approx(NOW + 3600, abs=1e-3)

    def test_a_request_for_a_deleted_entry_comes_without_it(self, store: ScheduleStore) -> None:
        asker = self._request_store(store)
        store.save(entry("gone", NOW + 3600))
        asker.request_run("gone", None, NOW - 1)
        store.delete("gone")
        (request,) = store.claim_due(None, NOW, 10).requests
        assert request.stored is None or request.stored.definition is None

    def test_a_request_is_not_claimed_before_its_time(self, store: ScheduleStore) -> None:
        asker = self._request_store(store)
        store.save(entry("job", NOW + 3600))
        asker.request_run("job", None, NOW + 60)
        assert list(store.claim_due(None, NOW, 10).requests) == []

    # ------------------------------------------------------------------ ordering

    def test_rank_scheduled_and_count_follow_due_order(self, store: ScheduleStore) -> None:
        store.save_many([entry("late", NOW + 30), entry("early", NOW + 10), entry("mid", NOW + 20)])
        assert [n for n, _ in store.scheduled()] == ["early", "mid", "late"]
        assert [n for n, _ in store.scheduled(0, 1)] == ["early", "mid"]
        assert store.rank("early") == 0
        assert store.rank("late") == 2
        assert store.count() == 3

    def test_scheduled_slices_with_an_inclusive_stop(self, store: ScheduleStore) -> None:
        """``start``..``stop`` inclusive, negative indices counting from the end."""
        store.save_many([entry(f"e{i}", NOW + i) for i in range(5)])
        assert [n for n, _ in store.scheduled(1, 2)] == ["e1", "e2"]
        assert [n for n, _ in store.scheduled(-2, -1)] == ["e3", "e4"]
        assert [n for n, _ in store.scheduled(3)] == ["e3", "e4"]
        assert [n for n, _ in store.scheduled(-100, 0)] == ["e0"]
        assert store.scheduled(4, 2) == []
        assert store.scheduled(7, 9) == []

    def test_scores_keep_millisecond_precision(self, store: ScheduleStore) -> None:
        store.save_many([entry("b", NOW + 0.002), entry("a", NOW + 0.001)])
        (first, s1), (second, s2) = store.scheduled()
        assert (first, second) == ("a", "b")
        assert s2 - s1 == pytest.approx(0.001, abs=1e-4)

    # ------------------------------------------------------------------ claim / commit

    def test_claim_returns_due_entries_in_order_with_next_due(self, store: ScheduleStore) -> None:
        store.save_many([entry("b", NOW - 1), entry("a", NOW - 2), entry("later", NOW + 5)])
        claim = store.claim_due(None, NOW, 10)
        assert claim.owned
        assert [e.name for e in claim.entries] == ["a", "b"]
        assert claim.entries[0].definition == '{"name": "a", "task": "t"}'
        assert claim.entries[0].meta == '{"m": 1}'
        assert claim.entries[0].score == pytest.approx(NOW - 2, abs=1e-3)
        assert claim.next_due == pytest.approx(NOW + 5, abs=1e-3)

    def test_claim_when_idle_reports_next_due_only(self, store: ScheduleStore) -> None:
        assert store.claim_due(None, NOW, 10).next_due is None
        store.save(entry("a", NOW + 7))
        claim = store.claim_due(None, NOW, 10)
        assert claim.owned
        assert list(claim.entries) == []
        assert claim.next_due == pytest.approx(NOW + 7, abs=1e-3)

    def test_claim_respects_the_limit(self, store: ScheduleStore) -> None:
        store.save_many([entry(f"e{i}", NOW - 10 + i) for i in range(5)])
        claim = store.claim_due(None, NOW, 3)
        assert [e.name for e in claim.entries] == ["e0", "e1", "e2"]
        assert claim.next_due == pytest.approx(NOW - 7, abs=1e-3)  # due, but not claimed

    def test_claim_is_a_read(self, store: ScheduleStore) -> None:
        store.save(entry("a", NOW - 1))
        assert len(store.claim_due(None, NOW, 10).entries) == 1
        assert len(store.claim_due(None, NOW, 10).entries) == 1

    def test_commit_writes_meta_and_scores(self, store: ScheduleStore) -> None:
        store.save_many([entry("a", NOW - 1), entry("b", NOW - 1)])
        ok = store.commit(
            None,
            [EntryUpdate("a", '{"ran": 1}', NOW + 30), EntryUpdate("b", None, None)],
        )
        assert ok
        a, b = store.load_many(["a", "b"])
        assert a is not None
        assert a.meta == '{"ran": 1}'
        assert a.score == pytest.approx(NOW + 30, abs=1e-3)
        assert b is not None
        assert b.meta == '{"m": 1}'
        assert store.rank("b") is None

    def test_commit_never_resurrects_a_deleted_entry(self, store: ScheduleStore) -> None:
        store.save(entry("a", NOW - 1))
        store.delete("a")
        store.commit(None, [EntryUpdate("a", '{"ran": 1}', NOW + 30)])
        assert store.load("a") is None
        assert store.count() == 0

    def test_quarantine_takes_entry_out_and_save_puts_it_back(self, store: ScheduleStore) -> None:
        store.save_many([entry("bad", NOW - 1), entry("good", NOW - 1)])
        store.commit(None, [], [Quarantine("bad", "corrupt JSON")])
        assert store.quarantined() == {"bad": "corrupt JSON"}
        assert [e.name for e in store.claim_due(None, NOW, 10).entries] == ["good"]
        assert store.load("bad") is not None  # kept for inspection
        store.save(entry("bad", NOW - 1))
        assert store.quarantined() == {}
        assert store.rank("bad") is not None

    def test_a_closed_store_reconnects_when_used_again(self, store: ScheduleStore) -> None:
        """The scheduler closes the store when beat stops; entries saved later in the same
        process (a web request, a test) must still work."""
        store.save(entry("a", NOW))
        store.close()
        store.save(entry("b", NOW + 1))
        assert [n for n, _ in store.scheduled()] == ["a", "b"]

    # ------------------------------------------------------------------ statics

    def test_replace_statics(self, store: ScheduleStore) -> None:
        store.save_many([entry("old", NOW), entry("dynamic", NOW)])
        store.set_statics(["old"])
        store.replace_statics([entry("new", NOW + 1)], ["old"], statics=["new"])
        assert store.statics() == {"new"}
        assert store.load("old") is None
        assert store.load("new") is not None
        assert store.load("dynamic") is not None
        store.replace_statics([], [], statics=[])
        assert store.statics() == set()

    # ------------------------------------------------------------------ two stores racing

    @pytest.mark.parametrize("overlap", ["same", "overlapping"])
    def test_two_stores_racing_on_replace_statics(
        self, store: ScheduleStore, make_store: Callable[[], ScheduleStore], overlap: str
    ) -> None:
        """Two beats started at once both sync ``beat_schedule``. Neither may fail (a unique
        key hit by the other's insert), and what is left is one sync's complete result: its
        set of statics, every one of its entries as it wrote them."""
        stores = (store, make_store())
        for race in range(self.race_rounds):
            old = [f"r{race}-old{i}" for i in range(3)]
            store.replace_statics([entry(n, NOW) for n in old], [], statics=old)
            first = [f"r{race}-s{i}" for i in range(RACE_ENTRIES)]
            half = RACE_ENTRIES // 2
            second = (
                first
                if overlap == "same"
                else [f"r{race}-s{i}" for i in range(half, RACE_ENTRIES + half)]
            )
            run_together([_sync_statics(stores[0], 0, first), _sync_statics(stores[1], 1, second)])
            statics = store.statics()
            # The writers whose set of statics is the final one (both, when they wrote the same).
            finished = {w for w, names in enumerate((first, second)) if set(names) == statics}
            assert finished, f"race {race}: statics {sorted(statics)} are nobody's set"
            loaded = store.load_many(sorted(statics))
            assert None not in loaded, f"race {race}: a static of the final set is missing"
            writers = {_writer_of(e) for e in loaded if e is not None}
            assert len(writers) == 1, f"race {race}: the statics mix both syncs' entries"
            assert writers <= finished, f"race {race}: statics of {finished}, entries of {writers}"
            assert store.load_many(old) == [None, None, None]

    def test_two_stores_racing_on_save(
        self, store: ScheduleStore, make_store: Callable[[], ScheduleStore]
    ) -> None:
        """Two processes saving the same names at once: neither fails, and every entry is one
        save's whole (definition, policy and score from the same writer), its meta the first
        one stored (saves keep a stored meta)."""
        other = make_store()
        for race in range(self.race_rounds):
            names = [f"r{race}-e{i}" for i in range(RACE_ENTRIES)]
            run_together(
                [
                    functools.partial(_save_one_by_one, store, names, 0),
                    functools.partial(_save_all_at_once, other, names, 1),
                ]
            )
            loaded = store.load_many(names)
            assert None not in loaded, f"race {race}: a saved entry is missing"
            for stored in loaded:
                assert stored is not None
                _writer_of(stored)
                assert stored.meta in ('{"writer": 0}', '{"writer": 1}'), stored

    def test_two_beats_starting_at_once(self, make_store: Callable[[], ScheduleStore]) -> None:
        """Two real schedulers with the same ``beat_schedule``, each on a store made at that
        moment (the first time on storage nobody used yet, as at a first deployment), started
        together: both start, and the statics are stored complete. Then again, twice, with
        changed definitions."""
        for race in range(3):
            beat_schedule = {
                f"static-{i}": {"task": f"contract.r{race}.static{i}", "schedule": 60.0}
                for i in range(20)
            }
            run_together([functools.partial(_start_beat, make_store, beat_schedule)] * 2)
            check = make_store()
            assert check.statics() == set(beat_schedule)
            stored = check.load_many(list(beat_schedule))
            assert [json.loads(e.definition or "{}").get("task") for e in stored if e] == [
                f"contract.r{race}.static{i}" for i in range(20)
            ]

    # ------------------------------------------------------------------ outages

    def test_the_scheduler_survives_an_unreachable_store(self, store: ScheduleStore) -> None:
        """A real scheduler on this store, cut off from it (every call raises
        ``StoreUnavailableError``, as the backend does once its retries gave up): ``tick()``
        never raises and returns a wait, and once the store answers again it dispatches."""
        from redbeat_core.scheduler import RedBeatScheduler

        cut = InterruptibleStore(store)
        task = f"contract.outage.{uuid.uuid4().hex[:8]}"
        with scheduler_app(cut) as app, _published() as published:
            scheduler = RedBeatScheduler(app=app)
            try:
                _save_due(app, task)
                cut.unreachable = True
                for _ in range(3):
                    wait = scheduler.tick()
                    assert wait > 0, "a tick during an outage must wait before the next one"
                assert cut.refused >= 3, "the ticks did not try the store"
                assert task not in published
                cut.unreachable = False
                assert poll(lambda: scheduler.tick() is not None and task in published)
                assert published.count(task) == 1
            finally:
                scheduler.close()

    def test_an_outage_is_reported_as_store_unavailable(self, store_outage: Outage) -> None:
        """While the storage is unreachable every call either still works (a read a local
        file can serve) or raises ``StoreUnavailableError``: never the client's own error,
        which the scheduler would not survive. ``close`` never fails. Afterwards the same
        store works again."""
        store = store_outage.store
        store.save(entry("kept", NOW))
        store_outage.begin()
        try:
            refused = _refused_calls(store, "while the storage was unreachable")
            assert refused, "no call failed: store_outage's begin() left the storage reachable"
            store.close()  # connecting again during the outage must be reported the same way
            _refused_calls(store, "after close(), while the storage was unreachable")
        finally:
            store_outage.end()
        assert poll(lambda: _answers(store, "after"), timeout=15.0), "no recovery after end()"
        assert store.load("kept") is not None

    def test_the_scheduler_survives_a_real_outage(self, store_outage: Outage) -> None:
        """A real scheduler through a real outage of the backend's storage: ticks during it
        return a wait and publish nothing; once it is over, the due entry is dispatched."""
        from redbeat_core.scheduler import RedBeatScheduler

        task = f"contract.real-outage.{uuid.uuid4().hex[:8]}"
        with scheduler_app(store_outage.store) as app, _published() as published:
            scheduler = RedBeatScheduler(app=app)
            try:
                _save_due(app, task)
                store_outage.begin()
                try:
                    for _ in range(3):
                        assert scheduler.tick() >= 0
                    assert task not in published
                finally:
                    store_outage.end()
                assert poll(lambda: scheduler.tick() is not None and task in published, timeout=15)
                assert published.count(task) == 1
            finally:
                scheduler.close()

    # ------------------------------------------------------------------ threads and fork

    def test_a_second_thread_uses_the_store_with_the_main_one(self, store: ScheduleStore) -> None:
        """One store, two threads at once (a web process's requests): every call works."""
        needs(self, "supports_threads")
        rounds = 50

        def use(prefix: str) -> None:
            for i in range(rounds):
                name = f"{prefix}-{i}"
                store.save(entry(name, NOW - 1))
                loaded = store.load(name)
                assert loaded is not None
                assert loaded.definition == entry(name, None).definition
                assert store.commit(None, [EntryUpdate(name, '{"ran": 1}', NOW + 60)])
                store.claim_due(None, NOW, 5)
                store.count()

        helper_errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def helper() -> None:
            try:
                barrier.wait(30)
                use("thread")
            except BaseException as exc:  # reported in the main thread, below
                helper_errors.append(exc)

        thread = threading.Thread(target=helper, daemon=True)
        thread.start()
        barrier.wait(30)
        use("main")
        thread.join(60)
        assert not thread.is_alive(), "the second thread did not finish"
        assert helper_errors == []
        assert store.count() == 2 * rounds
        assert list(store.claim_due(None, NOW, 10).entries) == []  # every commit landed

    def test_a_forked_child_uses_the_store(self, store: ScheduleStore) -> None:
        """A child forked after the parent used the store (a prefork worker) closes what it
        inherited, saves and loads, and exits with a status the parent checks; the parent's
        store goes on working."""
        needs(self, "supports_fork")
        if not hasattr(os, "fork"):
            pytest.skip("os.fork is not available on this platform")
        store.save(entry("from-parent", NOW))
        assert store.load("from-parent") is not None  # the parent's connection is in use

        def child() -> int:
            store.close()  # what a forked worker does with what it inherited
            store.save(entry("from-child", NOW + 1))
            if store.load("from-child") is None:
                return 2
            if store.load("from-parent") is None:
                return 3
            store.close()
            return 0 if store.count() == 2 else 4

        assert fork_and_wait(child) == 0, "the child failed (its traceback, if any, is above)"
        found = store.load_many(["from-parent", "from-child"])
        assert [e.name if e else None for e in found] == ["from-parent", "from-child"]
        store.save(entry("parent-again", NOW + 2))
        assert store.count() == 3


# ----------------------------------------------------------------------------- the lock


class LockContract:
    """What every :class:`~redbeat_core.typing.Lock` must do, against its store.

    Fixtures (see :attr:`fixtures`): ``store`` and ``make_lock``, both required.
    """

    fixtures: ClassVar[tuple[DeclaredFixture, ...]] = (STORE, MAKE_LOCK)

    #: Whether the lock hands out a fencing epoch that grows with every acquisition.
    supports_fencing_epoch: ClassVar[bool] = True
    #: How many times the contenders race for the lock.
    race_rounds: ClassVar[int] = 10

    @pytest.fixture(autouse=True)
    def _declared_fixtures(self, request: pytest.FixtureRequest) -> None:
        check_declared(self, request, self.fixtures)

    def test_is_a_lock(self, make_lock: Callable[[float], Lock]) -> None:
        assert isinstance(make_lock(5.0), Lock)

    def test_only_one_contender_holds_it(self, make_lock: Callable[[float], Lock]) -> None:
        first, second = make_lock(5.0), make_lock(5.0)
        assert first.acquire()
        assert first.held
        assert first.fence is not None
        assert not second.acquire()
        assert not second.held
        assert second.fence is None
        assert first.acquire()  # re-acquiring one's own lock extends it

    def test_release_lets_another_take_it(self, make_lock: Callable[[float], Lock]) -> None:
        first, second = make_lock(5.0), make_lock(5.0)
        assert first.acquire()
        first.release()
        assert not first.held
        assert second.acquire()
        first.release()  # releasing a lock one no longer holds frees nothing
        assert not make_lock(5.0).acquire()

    def test_expired_lock_is_taken_over(self, make_lock: Callable[[float], Lock]) -> None:
        first, second = make_lock(0.2), make_lock(5.0)
        assert first.acquire()
        assert poll(second.acquire, timeout=5.0)

    def test_fence_guards_claim_and_commit(
        self, store: ScheduleStore, make_lock: Callable[[float], Lock]
    ) -> None:
        store.save(entry("a", NOW - 1))
        leader, other = make_lock(5.0), make_lock(5.0)
        assert leader.acquire()
        fence = leader.fence
        assert fence is not None
        assert store.claim_due(fence, NOW, 10).owned
        stale = Fence(key=fence.key, token="not-the-holder", ttl=fence.ttl)  # noqa: S106
        claim = store.claim_due(stale, NOW, 10)
        assert not claim.owned
        assert list(claim.entries) == []
        assert not store.commit(stale, [EntryUpdate("a", '{"x": 1}', NOW + 99)])
        assert store.load("a").meta == '{"m": 1}'  # type: ignore[union-attr]
        leader.release()
        assert not store.claim_due(fence, NOW, 10).owned
        assert other.acquire()

    def test_a_commit_that_lost_the_fence_records_no_history(
        self, store: ScheduleStore, make_lock: Callable[[float], Lock]
    ) -> None:
        """History rides on the fenced claim: a beat that lost the lock writes nothing there
        (it writes what it holds outside the fence, with ``append_history``)."""
        if not isinstance(store, HistoryStore):
            pytest.skip(f"{type(store).__name__} keeps no run history")
        store.save(entry("a", NOW - 1))
        leader = make_lock(5.0)
        assert leader.acquire()
        fence = leader.fence
        assert fence is not None
        stale = Fence(key=fence.key, token="not-the-holder", ttl=fence.ttl)  # noqa: S106
        assert not store.claim_due(stale, NOW, 10, history=[_run("a", 1)]).owned
        assert store.history("a", 10) == []
        assert store.claim_due(fence, NOW, 10, history=[_run("a", 2)]).owned
        assert _runs(store.history("a", 10)) == [("a", 2)]

    def test_claim_extends_the_lock(
        self, store: ScheduleStore, make_lock: Callable[[float], Lock]
    ) -> None:
        leader = make_lock(0.5)
        assert leader.acquire()
        fence = leader.fence
        assert fence is not None
        longer = Fence(key=fence.key, token=fence.token, ttl=30.0, epoch=fence.epoch)
        assert store.claim_due(longer, NOW, 10).owned
        # Had the claim not extended it to 30 s, it would lapse after 0.5 s.
        assert not poll(make_lock(5.0).acquire, timeout=1.5)

    def test_commit_extends_the_lock(
        self, store: ScheduleStore, make_lock: Callable[[float], Lock]
    ) -> None:
        leader = make_lock(0.5)
        assert leader.acquire()
        fence = leader.fence
        assert fence is not None
        longer = Fence(key=fence.key, token=fence.token, ttl=30.0, epoch=fence.epoch)
        assert store.commit(longer, [])
        assert not poll(make_lock(5.0).acquire, timeout=1.5)

    def test_a_lapsed_lease_fails_claim_and_commit(
        self, store: ScheduleStore, make_lock: Callable[[float], Lock]
    ) -> None:
        """Even when nobody took the lock over: a stalled leader must not dispatch."""
        store.save(entry("a", NOW - 1))
        leader = make_lock(0.3)
        assert leader.acquire()
        fence = leader.fence
        assert fence is not None
        # Time itself is under test here: wait out the lease without touching the store (any
        # claim would renew it).
        time.sleep(fence.ttl + 0.3)
        assert not store.claim_due(fence, NOW, 10).owned
        assert not store.commit(fence, [EntryUpdate("a", '{"x": 1}', NOW + 99)])
        assert store.load("a").meta == '{"m": 1}'  # type: ignore[union-attr]

    def test_forget_drops_local_state(self, make_lock: Callable[[float], Lock]) -> None:
        lock = make_lock(5.0)
        assert lock.acquire()
        lock.forget()
        assert not lock.held
        assert lock.fence is None

    def test_epoch_grows_with_each_acquisition(self, make_lock: Callable[[float], Lock]) -> None:
        needs(self, "supports_fencing_epoch")
        first, second = make_lock(5.0), make_lock(5.0)
        assert first.acquire()
        epoch1 = first.fence.epoch  # type: ignore[union-attr]
        first.release()
        assert second.acquire()
        assert second.fence.epoch > epoch1 >= 1  # type: ignore[union-attr]

    def test_contenders_racing_for_it_one_wins(self, make_lock: Callable[[float], Lock]) -> None:
        """Beats started at the same moment: exactly one takes the lock, every time."""
        for race in range(self.race_rounds):
            contenders = [make_lock(5.0) for _ in range(4)]
            won = _race_for(contenders)
            assert won.count(True) == 1, f"race {race}: {won.count(True)} contenders won"
            winner = contenders[won.index(True)]
            assert [c.held for c in contenders] == won
            winner.release()
