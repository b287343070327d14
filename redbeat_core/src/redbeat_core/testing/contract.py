"""The backend contract suite: what every ScheduleStore and Lock must do.

A backend's test module subclasses these classes and provides fixtures; every test then runs
against that backend, unchanged::

    from redbeat_core.testing.contract import LockContract, StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, my_server):
            return MyStore(...)          # empty, isolated per test

    class TestMyLock(LockContract):
        @pytest.fixture
        def make_lock(self, store):
            return lambda ttl: MyLock(..., ttl=ttl)   # every call: a new contender

Required fixtures: ``store`` (an empty store, isolated per test) for ``StoreContract``;
``store`` and ``make_lock(ttl: float) -> Lock`` for ``LockContract``. Optional capabilities are
declared as class attributes and the tests that need them are skipped when they are False:
``supports_fencing_epoch`` (the lock hands out growing epochs).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from redbeat_core.typing import (
    EntryUpdate,
    Fence,
    Lock,
    Quarantine,
    ScheduleStore,
    StoredEntry,
)

NOW = 1_700_000_000.0


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


class StoreContract:
    """What every :class:`~redbeat_core.typing.ScheduleStore` must do."""

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

    # ------------------------------------------------------------------ ordering

    def test_rank_scheduled_and_count_follow_due_order(self, store: ScheduleStore) -> None:
        store.save_many([entry("late", NOW + 30), entry("early", NOW + 10), entry("mid", NOW + 20)])
        assert [n for n, _ in store.scheduled()] == ["early", "mid", "late"]
        assert [n for n, _ in store.scheduled(0, 1)] == ["early", "mid"]
        assert store.rank("early") == 0
        assert store.rank("late") == 2
        assert store.count() == 3

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


class LockContract:
    """What every :class:`~redbeat_core.typing.Lock` must do, against its store."""

    #: Whether the lock hands out a fencing epoch that grows with every acquisition.
    supports_fencing_epoch = True

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
        if not self.supports_fencing_epoch:
            pytest.skip("this lock declares no fencing epoch")
        first, second = make_lock(5.0), make_lock(5.0)
        assert first.acquire()
        epoch1 = first.fence.epoch  # type: ignore[union-attr]
        first.release()
        assert second.acquire()
        assert second.fence.epoch > epoch1 >= 1  # type: ignore[union-attr]
