"""The backend contract suite, run against the Redis backend on real Valkey and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from redbeat_core.testing.contract import LockContract, StoreContract
from redbeat_core.typing import Lock
from redbeat_redis import RedisKeys, RedisLock, RedisStore, RetryingConnection


@pytest.fixture
def client(redbeat_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redbeat_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def store(client: Any) -> RedisStore:
    keys = RedisKeys(
        prefix="redbeat:",
        schedule="redbeat::schedule",
        statics="redbeat::statics",
        quarantine="redbeat::quarantine",
    )
    return RedisStore(client=client, keys=keys, retry=RetryingConnection(None, client))


class TestRedisStore(StoreContract):
    pass


class TestRedisLock(LockContract):
    @pytest.fixture
    def make_lock(self, client: Any) -> Callable[[float], Lock]:
        def make(ttl: float) -> Lock:
            return RedisLock(
                client=client,
                key="redbeat::lock",
                ttl=ttl,
                retry=RetryingConnection(None, client),
                token=uuid.uuid4().hex,
            )

        return make


class TestUndecodedClient(StoreContract):
    """A client assigned by the user may not decode responses; the store copes."""

    @pytest.fixture
    def store(self, redbeat_url: str) -> Iterator[RedisStore]:
        client = redis.Redis.from_url(redbeat_url)  # bytes responses
        keys = RedisKeys("redbeat:", "redbeat::schedule", "redbeat::statics", "redbeat::quarantine")
        yield RedisStore(client=client, keys=keys, retry=RetryingConnection(None, client))
        client.close()
