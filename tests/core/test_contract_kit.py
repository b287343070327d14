"""The contract kit itself, without any server: the contract suite on the smallest backend the
base classes allow (``tests/memory_store.py``), and what an author sees when a fixture is
missing or a capability is switched off (inner pytest runs with ``pytester``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from memory_store import MemoryLease, MemoryStorage, MemoryStore

from redbeat_core.locks import LeaseLock
from redbeat_core.stores import StoreBase
from redbeat_core.testing.contract import LockContract, Outage, StoreContract, entry
from redbeat_core.typing import Lock, ScheduleStore

pytest_plugins = ("pytester",)

NOW = 1_700_000_000.0


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def store(storage: MemoryStorage) -> MemoryStore:
    return MemoryStore(storage)


@pytest.fixture
def make_store(storage: MemoryStorage) -> Callable[[], MemoryStore]:
    return lambda: MemoryStore(storage)


@pytest.fixture
def store_outage() -> Outage:
    storage = MemoryStorage()

    def begin() -> None:
        storage.reachable = False

    def end() -> None:
        storage.reachable = True

    return Outage(MemoryStore(storage), begin=begin, end=end)


class TestMemoryStore(StoreContract):
    #: One process's memory: a forked child writes into its own copy.
    supports_fork = False


class TestMemoryLease(LockContract):
    @pytest.fixture
    def make_lock(self, storage: MemoryStorage) -> Callable[[float], Lock]:
        return lambda ttl: MemoryLease(storage, key="redbeat::lock", ttl=ttl)


# ----------------------------------------------------------------------------- the base classes


def test_the_base_class_supplies_the_rest_of_the_protocol(store: MemoryStore) -> None:
    assert isinstance(store, ScheduleStore)
    required = {
        name
        for name in dir(StoreBase)
        if getattr(getattr(StoreBase, name), "__isabstractmethod__", False)
    }
    assert required == {
        "claim_due",
        "commit",
        "write",
        "load_many",
        "scheduled",
        "statics",
        "quarantined",
        "close",
    }


def test_derived_count_and_rank_read_the_schedule(store: MemoryStore) -> None:
    store.save_many([entry("b", NOW + 2), entry("a", NOW + 1), entry("off", None)])
    assert store.count() == 2
    assert (store.rank("a"), store.rank("b"), store.rank("off"), store.rank("nope")) == (
        0,
        1,
        None,
        None,
    )


def test_update_meta_never_recreates_a_deleted_entry(store: MemoryStore) -> None:
    store.save(entry("a", NOW))
    store.delete("a")
    store.update_meta("a", '{"v": 1}', NOW)
    assert store.load("a") is None


def test_a_subclass_missing_a_required_method_cannot_be_built() -> None:
    class Half(StoreBase):
        def close(self) -> None: ...

    with pytest.raises(TypeError, match="claim_due"):
        Half()  # type: ignore[abstract]


def test_every_lease_lock_is_a_new_contender_with_its_own_token(storage: MemoryStorage) -> None:
    first = MemoryLease(storage, key="k", ttl=5.0)
    second = MemoryLease(storage, key="k", ttl=5.0)
    assert isinstance(first, LeaseLock)
    assert first.token != second.token
    assert len(first.token) == 32
    assert first.fence is None
    assert first.acquire()
    assert first.fence is not None
    assert (first.fence.key, first.fence.token, first.fence.ttl, first.fence.epoch) == (
        "k",
        first.token,
        5.0,
        1,
    )


def test_release_drops_the_local_state_even_when_the_storage_is_away(
    storage: MemoryStorage,
) -> None:
    lock = MemoryLease(storage, key="k", ttl=5.0)
    assert lock.acquire()
    storage.reachable = False
    with pytest.raises(Exception, match="unreachable"):
        lock.release()
    assert not lock.held  # this beat no longer leads; the lease lapses by itself


# ----------------------------------------------------------------------------- what an author sees

AUTHOR_MODULE = """
import pytest
from memory_store import MemoryLease, MemoryStorage, MemoryStore
from redbeat_core.testing.contract import LockContract, Outage, StoreContract

STORAGE = MemoryStorage()

{fixtures}

class TestMine({contract}):
{body}
"""


def run_author_tests(
    pytester: pytest.Pytester,
    *,
    fixtures: str = "",
    contract: str = "StoreContract",
    body: str = "    pass",
    select: str,
) -> pytest.RunResult:
    pytester.makepyfile(
        test_mine=AUTHOR_MODULE.format(fixtures=fixtures, contract=contract, body=body)
    )
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", select, "-rs")


def test_a_missing_fixture_fails_naming_it_and_what_it_returns(pytester: pytest.Pytester) -> None:
    result = run_author_tests(pytester, select="test_load_missing_is_none")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*TestMine (a StoreContract) needs the fixture 'store': an empty ScheduleStore*"]
    )
    result.stdout.no_fnmatch_line("*fixture 'store' not found*")


def test_a_missing_lock_fixture_is_named_too(pytester: pytest.Pytester) -> None:
    fixtures = "@pytest.fixture\ndef store():\n    return MemoryStore(STORAGE)\n"
    result = run_author_tests(
        pytester, fixtures=fixtures, contract="LockContract", select="test_is_a_lock"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*(a LockContract) needs the fixture 'make_lock': a callable*"])


def test_a_module_level_fixture_works(pytester: pytest.Pytester) -> None:
    fixtures = "@pytest.fixture\ndef store():\n    return MemoryStore(MemoryStorage())\n"
    result = run_author_tests(pytester, fixtures=fixtures, select="round_trips or missing")
    result.assert_outcomes(passed=2)


def test_a_class_level_fixture_works(pytester: pytest.Pytester) -> None:
    body = (
        "    @pytest.fixture\n    def store(self):\n        return MemoryStore(MemoryStorage())\n"
    )
    result = run_author_tests(pytester, body=body, select="round_trips or missing")
    result.assert_outcomes(passed=2)


def test_an_optional_fixture_names_its_flag(pytester: pytest.Pytester) -> None:
    fixtures = "@pytest.fixture\ndef store():\n    return MemoryStore(MemoryStorage())\n"
    result = run_author_tests(pytester, fixtures=fixtures, select="an_outage_is_reported")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*needs the fixture 'store_outage'*set supports_outage = False to skip them*"]
    )


def test_a_switched_off_capability_skips_naming_the_flag(pytester: pytest.Pytester) -> None:
    fixtures = "@pytest.fixture\ndef store():\n    return MemoryStore(MemoryStorage())\n"
    body = "    supports_outage = False\n    supports_fork = False\n"
    result = run_author_tests(pytester, fixtures=fixtures, body=body, select="outage or forked")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(
        ["*TestMine.supports_outage is False*", "*TestMine.supports_fork is False*"]
    )


def test_an_error_inside_the_authors_fixture_is_reported_as_theirs(
    pytester: pytest.Pytester,
) -> None:
    fixtures = "@pytest.fixture\ndef store(my_server):\n    return MemoryStore(MemoryStorage())\n"
    result = run_author_tests(pytester, fixtures=fixtures, select="test_load_missing_is_none")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'my_server' not found*"])


# ----------------------------------------------------------------------------- what the kit catches

BROKEN_STORES = '''
import time

@pytest.fixture
def store():
    return {store}(STORAGE)

@pytest.fixture
def make_store():
    return lambda: {store}(STORAGE)

class InsertThenUpdate(MemoryStore):
    """Checks for each name, then inserts it in a second step: what crashed a PostgreSQL
    store when two beats started at once (a unique-key violation). Each step is a round trip
    (sleep(0) lets the other thread run, as waiting on a socket would)."""

    def write(self, saves=(), deletes=(), *, keep_meta=True, statics=None):
        with self.storage.lock:
            missing = [e for e in saves if e.name not in self.storage.entries]
        for new in missing:
            time.sleep(0)  # a round trip: another process runs meanwhile
            with self.storage.lock:
                if new.name in self.storage.entries:
                    raise ValueError(f"duplicate key {{new.name!r}}")
                self.storage.entries[new.name] = new
        super().write(saves, deletes, keep_meta=keep_meta, statics=statics)

class OneByOne(MemoryStore):
    """Writes each entry in a step of its own: another writer's entries slip in between."""

    def write(self, saves=(), deletes=(), *, keep_meta=True, statics=None):
        for new in saves:
            super().write([new], keep_meta=keep_meta)
            time.sleep(0)  # a round trip: another process runs meanwhile
        super().write((), deletes, statics=statics)

class RawErrors(MemoryStore):
    """Lets the client's own error escape during an outage."""

    def load_many(self, names):
        if not self.storage.reachable:
            raise ConnectionResetError("connection reset by peer")
        return super().load_many(names)

@pytest.fixture
def store_outage():
    storage = MemoryStorage()

    def begin():
        storage.reachable = False

    def end():
        storage.reachable = True

    return Outage({store}(storage), begin=begin, end=end)
'''


@pytest.mark.parametrize("store", ["InsertThenUpdate", "OneByOne"])
def test_a_store_whose_writes_are_not_atomic_fails_the_races(
    pytester: pytest.Pytester, store: str
) -> None:
    result = run_author_tests(
        pytester,
        fixtures=BROKEN_STORES.format(store=store),
        body="    race_rounds = 50  # the interleaving is random: enough rounds to always see it",
        select="racing_on_replace_statics",
    )
    assert result.parseoutcomes().get("failed", 0) >= 1, result.stdout.str()


def test_a_raw_client_error_in_an_outage_fails_naming_the_method(
    pytester: pytest.Pytester,
) -> None:
    result = run_author_tests(
        pytester,
        fixtures=BROKEN_STORES.format(store="RawErrors"),
        select="test_an_outage_is_reported_as_store_unavailable",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*load raised builtins.ConnectionResetError*"])
