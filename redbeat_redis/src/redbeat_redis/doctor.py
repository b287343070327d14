"""``redbeat doctor``'s Redis checks: the server, its eviction policy, persistence, clock and
the ACL user's permissions (for the Redis, Sentinel and Cluster backends alike).

Each check reads with commands an operator's user may lack (``INFO``, ``CONFIG GET``, ``ACL
DRYRUN``): a refused one is reported as "cannot check", with the permission that would let it,
never as a failure of the storage itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import redis.exceptions

from redbeat_core.doctor import Finding, Verdict
from redbeat_core.hookspecs import hookimpl
from redbeat_core.typing import Backend
from redbeat_redis import acl
from redbeat_redis.backend import RedisBackend
from redbeat_redis.connection import unwrap

T = TypeVar("T")

#: Host and server clocks further apart than this are reported (due times follow the host's).
MAX_SKEW: Final = 1.0
#: Eviction policies that may evict keys without a TTL: the schedule itself.
EVICTS_ANY_KEY: Final = frozenset({"allkeys-lru", "allkeys-lfu", "allkeys-random"})
#: The features whose commands a beat's user needs.
BEAT_FEATURES: Final = ("beat", "entries")


class _Refused(Exception):
    """The ACL refused a command a check needs."""


@hookimpl
def redbeat_doctor(app: Any, backend: Backend) -> Sequence[Finding]:
    if not isinstance(backend, RedisBackend):
        return ()
    client = unwrap(backend.client)
    try:
        server_time = _read(client.time)
    except _Refused:
        server_time = None
    except redis.exceptions.RedisError as exc:
        return [
            Finding(
                "connection",
                Verdict.PROBLEM,
                f"cannot reach {backend.describe()}: {exc}",
                "start the server, or fix the storage URL and its credentials",
            )
        ]
    findings = [_server(client, backend), _eviction(client), _persistence(client)]
    if server_time is not None:
        findings.append(_skew(server_time))
    findings.append(_acl(client, backend))
    return findings


def _read(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except redis.exceptions.NoPermissionError as exc:
        raise _Refused(str(exc)) from exc
    except redis.exceptions.ResponseError as exc:
        if "NOPERM" in str(exc) or "no permissions" in str(exc):
            raise _Refused(str(exc)) from exc
        raise


def _info(client: Any, section: str) -> dict[str, Any]:
    info = _read(lambda: client.info(section))
    if info and all(isinstance(value, dict) for value in info.values()):  # a cluster: per node
        first: dict[str, Any] = next(iter(info.values()))
        return first
    return info  # type: ignore[no-any-return]


def _server(client: Any, backend: RedisBackend) -> Finding:
    try:
        info = _info(client, "server")
    except _Refused:
        return Finding(
            "server",
            Verdict.WARNING,
            f"reachable ({backend.describe()}), but the user cannot run INFO",
            "grant +info to let doctor check the version, eviction and persistence",
        )
    name = "valkey" if "valkey_version" in info else "redis"
    version = info.get("valkey_version") or info.get("redis_version", "?")
    return Finding("server", Verdict.OK, f"{name} {version}, {backend.describe()}")


def _eviction(client: Any) -> Finding:
    try:
        info = _info(client, "memory")
    except _Refused:
        return Finding("eviction", Verdict.WARNING, "cannot read INFO memory", "grant +info")
    policy = str(info.get("maxmemory_policy", "?"))
    limit = int(info.get("maxmemory", 0) or 0)
    if limit == 0:
        return Finding("eviction", Verdict.OK, f"no memory limit (policy {policy})")
    if policy in EVICTS_ANY_KEY:
        return Finding(
            "eviction",
            Verdict.PROBLEM,
            f"maxmemory-policy {policy} with a {limit:,}-byte limit: at the limit the server "
            "evicts schedule entries, which then silently never run",
            "CONFIG SET maxmemory-policy noeviction (or keep RedBeat on a server of its own)",
        )
    if policy.startswith("volatile-"):
        return Finding(
            "eviction",
            Verdict.WARNING,
            f"maxmemory-policy {policy}: at the limit the server may evict the beat lock (it "
            "has a TTL), and another beat then takes over",
            "CONFIG SET maxmemory-policy noeviction",
        )
    return Finding("eviction", Verdict.OK, f"maxmemory-policy {policy}, limit {limit:,} bytes")


def _persistence(client: Any) -> Finding:
    try:
        info = _info(client, "persistence")
    except _Refused:
        return Finding(
            "persistence", Verdict.WARNING, "cannot read INFO persistence", "grant +info"
        )
    if str(info.get("aof_enabled", "0")) == "1":
        return Finding("persistence", Verdict.OK, "AOF is on")
    try:
        save = _read(lambda: client.config_get("save")).get("save", "")
    except _Refused:
        return Finding(
            "persistence",
            Verdict.WARNING,
            "AOF is off, and the user cannot read the RDB save points",
            "grant +config|get to check them; without persistence a restart loses the schedule",
        )
    if save:
        return Finding("persistence", Verdict.OK, f"RDB snapshots (save {save}), AOF off")
    return Finding(
        "persistence",
        Verdict.WARNING,
        "persistence is off (no AOF, no RDB save points): a restart loses every entry",
        "CONFIG SET appendonly yes (or a save point); statics come back at the next beat start, "
        "dynamic entries do not",
    )


def _skew(server_time: Any) -> Finding:
    seconds, micros = server_time
    skew = time.time() - (int(seconds) + int(micros) / 1e6)
    if abs(skew) <= MAX_SKEW:
        return Finding(
            "clock", Verdict.OK, f"this host and the server agree within {abs(skew):.3f}s"
        )
    return Finding(
        "clock",
        Verdict.WARNING,
        f"this host's clock is {abs(skew):.1f}s {'ahead of' if skew > 0 else 'behind'} the "
        "server's: beats on hosts with other clocks dispatch early or late after a failover",
        "keep every host in sync with NTP",
    )


def _acl(client: Any, backend: RedisBackend) -> Finding:
    try:
        user = str(_read(client.acl_whoami))
    except _Refused:
        return Finding(
            "acl",
            Verdict.WARNING,
            "cannot tell which ACL user this is",
            "grant +acl|whoami and +acl|dryrun to let doctor check the user's permissions",
        )
    except redis.exceptions.ResponseError as exc:  # a server without ACLs
        return Finding("acl", Verdict.OK, f"no ACL to check ({exc})")
    key = backend.config.key_for("doctor-probe")
    lock_key = backend.config.lock_key or key
    channel = f"{lock_key}:alive:doctor-probe"
    missing: list[str] = []
    try:
        for command in acl.rule_commands(BEAT_FEATURES):
            words = command.split("|")
            probe = _dryrun_arguments(words, key, channel)
            refusal = _refusal(client, user, probe)
            if refusal is None:
                continue
            # A channel refused: the grant is the channels under the lock key, once.
            grant = f"&{lock_key}:*" if "channel" in refusal.lower() else f"+{command}"
            if grant not in missing:
                missing.append(grant)
    except _Refused:
        return Finding(
            "acl",
            Verdict.WARNING,
            f"the user {user!r} cannot run ACL DRYRUN, so its permissions are not checked",
            "grant +acl|dryrun, or run doctor as an admin user",
        )
    except redis.exceptions.ResponseError as exc:  # DRYRUN is Redis 7.0+ / Valkey
        return Finding("acl", Verdict.WARNING, f"cannot check the ACL: {exc}", None)
    if not missing:
        return Finding("acl", Verdict.OK, f"the user {user!r} can run every command a beat needs")
    lacking = ", ".join(grant.removeprefix("+") for grant in missing)
    return Finding(
        "acl",
        Verdict.PROBLEM,
        f"the user {user!r} lacks {lacking}: a beat under it fails, or (the pub/sub commands "
        "and channels) works without the lock's liveness",
        f"ACL SETUSER {user} {' '.join(missing)}",
    )


def _refusal(client: Any, user: str, probe: list[str]) -> str | None:
    """``ACL DRYRUN``: None when ``user`` may run ``probe``, else the server's reason."""
    reply = _read(lambda: client.execute_command("ACL", "DRYRUN", user, *probe))
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return None if text == "OK" else text


def _dryrun_arguments(words: list[str], key: str, channel: str) -> list[str]:
    """A plausible call of ``command`` on ``key`` (or ``channel``) for ``ACL DRYRUN`` (which
    checks the command and the keys and channels it names, not the arguments' meaning)."""
    name = words[0]
    if len(words) > 1:
        if name == "pubsub":
            return [*words, channel]
        return [*words, "return 1"] if name == "script" else words
    return {
        "subscribe": ["subscribe", channel],
        "publish": ["publish", channel, "m"],
        "evalsha": ["evalsha", "0" * 40, "1", key],
        "time": ["time"],
        "set": ["set", key, "v"],
        "pexpire": ["pexpire", key, "1000"],
        "hset": ["hset", key, "f", "v"],
        "hsetnx": ["hsetnx", key, "f", "v"],
        "hdel": ["hdel", key, "f"],
        "hmget": ["hmget", key, "f"],
        "hget": ["hget", key, "f"],
        "lpush": ["lpush", key, "v"],
        "ltrim": ["ltrim", key, "0", "9"],
        "lrange": ["lrange", key, "0", "9"],
        "zadd": ["zadd", key, "1", "m"],
        "zrem": ["zrem", key, "m"],
        "zrange": ["zrange", key, "0", "-1"],
        "zrangebyscore": ["zrangebyscore", key, "0", "1"],
        "zremrangebyscore": ["zremrangebyscore", key, "0", "1"],
        "zscore": ["zscore", key, "m"],
        "zrank": ["zrank", key, "m"],
        "sadd": ["sadd", key, "m"],
        "smembers": ["smembers", key],
        "wait": ["wait", "0", "0"],
    }.get(name, [name, key])
