"""A RedBeat lock strategy with its own Redis key and lease time.

An example of a strategy plugin: it replaces RedBeat's lock through the first-result hook
``redbeat_make_lock``, whose default implementation is an ordinary ``trylast`` one. The lease
is kept where the Redis store checks it (a Redis string holding the token under the fence's
key), so every claim and commit still fences and renews it.
"""

from redbeat_lockstrategy.lock import NamespacedRedisLock
from redbeat_lockstrategy.settings import (
    DEFAULT_NAMESPACE,
    ENABLED_SETTING,
    NAMESPACE_SETTING,
    TTL_SETTING,
    LockStrategySettings,
    is_enabled,
    lease_key,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "ENABLED_SETTING",
    "NAMESPACE_SETTING",
    "TTL_SETTING",
    "LockStrategySettings",
    "NamespacedRedisLock",
    "is_enabled",
    "lease_key",
]
__version__ = "0.1.0"
