"""How the cluster backend reports a cluster in the middle of a failover (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from redbeat_cluster.backend import ClusterRetry
from redbeat_cluster.connection import check_redis_py
from redbeat_core.exceptions import ConfigurationError, StoreUnavailableError
from redbeat_redis import RedisKeys, RedisStore


def failing(error: Exception, times: int) -> Any:
    calls = [0]

    def operation() -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise error
        return "ok"

    operation.calls = calls  # type: ignore[attr-defined]
    return operation


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ClusterDownError("CLUSTERDOWN The cluster is down"),
        redis.exceptions.MasterDownError("MASTERDOWN Link with MASTER is down"),
        redis.exceptions.TryAgainError("TRYAGAIN"),
        redis.exceptions.SlotNotCoveredError("slot 10856 not covered"),
        redis.exceptions.RedisClusterException("Redis Cluster cannot be connected"),
        redis.exceptions.ConnectionError("refused"),
    ],
)
def test_outage_errors_become_the_stores_unavailable_error(error: Exception) -> None:
    class Client:
        def zcard(self, key: str) -> int:
            raise error

    keys = RedisKeys("{redbeat}:", "{redbeat}::schedule", "{redbeat}::statics", "{redbeat}::q")
    store = RedisStore(client=Client(), keys=keys, retry=ClusterRetry(None, None))
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        store.count()


def test_outage_errors_are_retried_within_the_retry_period() -> None:
    waits: list[float] = []
    retry = ClusterRetry(30, None, sleep=waits.append, clock=lambda: 0.0)
    operation = failing(redis.exceptions.ClusterDownError("CLUSTERDOWN"), times=3)
    assert retry.call(operation) == "ok"
    assert operation.calls == [4]
    assert len(waits) == 3


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.CrossSlotTransactionError("keys in two slots"),
        redis.exceptions.ResponseError("WRONGTYPE"),
        redis.exceptions.NoScriptError("NOSCRIPT"),
    ],
)
def test_programming_errors_are_not_retried_or_disguised(error: Exception) -> None:
    operation = failing(error, times=1)
    with pytest.raises(type(error)):
        ClusterRetry(30, None, sleep=lambda s: None).call(operation)
    assert operation.calls == [1]


def test_a_redis_py_without_cluster_transactions_is_refused() -> None:
    check_redis_py("8.1.0")
    check_redis_py("6.2.0")
    check_redis_py("7.0.0b1")
    with pytest.raises(ConfigurationError, match=r"redis>=6\.2"):
        check_redis_py("5.2.1")
