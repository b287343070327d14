"""The backend contract suite, run against the Redis backend on real Valkey and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from redbeat_core.testing.contract import LockContract, Outage, StoreContract
from redbeat_core.typing import Lock
from redbeat_redis import RedisKeys, RedisLock, RedisStore, RetryingConnection

KEYS = RedisKeys("redbeat:", "redbeat::schedule", "redbeat::statics", "redbeat::quarantine")


def redis_store(client: Any) -> RedisStore:
    return RedisStore(client=client, keys=KEYS, retry=RetryingConnection(None, client))


@pytest.fixture
def store(client: Any) -> RedisStore:
    return redis_store(client)


@pytest.fixture
def make_store(redbeat_url: str) -> Iterator[Callable[[], RedisStore]]:
    """Each store on a client of its own: another beat process, as far as the server knows."""
    clients: list[Any] = []

    def make() -> RedisStore:
        clients.append(redis.Redis.from_url(redbeat_url, decode_responses=True))
        return redis_store(clients[-1])

    yield make
    for made in clients:
        made.close()


@pytest.fixture
def store_outage(redbeat_server_factory: Callable[..., Any]) -> Iterator[Outage]:
    """A private server, SIGKILLed and restarted on its port; every write is in its
    append-only file before it is acknowledged, so the restart brings the data back."""
    server = redbeat_server_factory(extra_args=["--appendonly", "yes", "--appendfsync", "always"])
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5)
    yield Outage(redis_store(client), begin=server.kill, end=server.restart)
    client.close()


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
        yield redis_store(client)
        client.close()
