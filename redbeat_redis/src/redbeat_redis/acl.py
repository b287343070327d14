"""What a Redis ACL user needs for each of RedBeat's features, and what to say when the server
refuses a command.

The rules are command by command: each command listed is sent by the feature (directly, or by
one of its Lua scripts, where the server checks the ACL again), and the tests run every feature
under exactly its rule, and under the rule minus each command, on real servers. The security
guide shows the same rules (a test compares them).

A refusal (``NOPERM``, or an ACL failure inside a script) becomes
:class:`~redbeat_core.exceptions.StorePermissionError` naming the permission to grant: the
beat survives it as it survives an outage, logs it once and keeps trying, so granting the
permission is enough. Only ``WAIT`` is different (:func:`warn_wait_refused`): by the time it is
refused the commit it follows is done, so the tick goes on and publishes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import redis.exceptions

from redbeat_core.exceptions import StorePermissionError
from redbeat_redis import scripts
from redbeat_redis.errors import RedisPermissionError

logger = logging.getLogger("celery.beat")

#: Every script and its loading: what any feature needs first.
_SCRIPTS: Final = ("evalsha", "script|load")

#: The commands of each feature (ACL names, ``command|subcommand``), by what the feature does.
FEATURES: Final[Mapping[str, tuple[str, ...]]] = {
    # Start-up (statics sync: smembers, load.lua, write.lua), the lock (acquire_lock.lua,
    # release_lock.lua) and the tick (claim.lua, which reads run-now requests, commit.lua,
    # which quarantines and writes the run history: without lpush/ltrim the beat schedules,
    # but records no history). The lock's liveness (redbeat_lock_liveness) subscribes to
    # channels under the lock key (see CHANNEL_FEATURES), counts a holder's subscribers
    # (pubsub|numsub, which is not checked against channels) and publishes a release: without
    # them the beat works and standbys wait for a dead leader's lease to lapse.
    "beat": (
        *_SCRIPTS, "time", "get", "set", "pexpire", "incr", "del", "type", "hset", "hsetnx",
        "hdel", "hmget", "zadd", "zrem", "zrange", "zrangebyscore", "zscore", "sadd", "smembers",
        "zremrangebyscore", "lpush", "ltrim", "hget", "pttl", "subscribe", "pubsub|numsub",
        "publish",
    ),
    # RedBeatSchedulerEntry from any process: save, delete (write.lua, then the audit log's
    # lpush/ltrim), from_key / load (load.lua), reschedule / next (commit.lua without a
    # lock), rank.
    "entries": (
        *_SCRIPTS, "type", "hset", "hsetnx", "hdel", "hmget", "zadd", "zrem", "zscore", "del",
        "zrank", "lpush", "ltrim",
    ),
    # Reading the whole schedule: the store's count, scheduled, quarantined, statics and
    # names, the run history, and the lock's status (the Prometheus plugin's gauges,
    # `redbeat list`, `redbeat history`, `redbeat lock` and the other operator tools).
    "inspection": (
        "zcard", "zrange", "hgetall", "smembers", "scan", "get", "pttl", "time", "lrange",
    ),
    # Entries with an overlap policy: the beat reserves their runs (runs.lua reserve).
    "overlap": (
        *_SCRIPTS, "time", "zcount", "zremrangebyscore", "zcard", "zadd", "pttl", "pexpire",
    ),
    # Workers recording the runs of those entries (runs.lua started, finished, renew, alive).
    "run_tracking": (
        *_SCRIPTS, "time", "zrem", "zadd", "pttl", "pexpire", "zscore", "zremrangebyscore",
    ),
    # Stored blackout calendars: `redbeat calendar` and Schedule.set_calendar (with the audit
    # log's lpush/ltrim); a beat whose entries name stored calendars needs hgetall.
    "calendars": ("hgetall", "hset", "hdel", "lpush", "ltrim"),
    # redbeat_replica_acks: WAIT after each busy tick's commit.
    "replica_acks": ("wait",),
    # A database other than 0 in the URL or the options.
    "database": ("select",),
    # The cluster client: the slot map and the key table of commands.
    "cluster": ("cluster|slots", "command"),
    # On the sentinels (their own ACL): where the master is.
    "sentinels": ("sentinel|masters",),
}  # fmt: skip


#: The features that use pub/sub channels (all under the key prefix, like the keys).
CHANNEL_FEATURES: Final = frozenset({"beat"})

#: A broader rule in categories, for the beat, the entry API and inspection together (it
#: allows more commands than they need, on the same keys).
CATEGORIES: Final = ("@read", "@write", "@pubsub", "evalsha", "script|load", "time")


def category_rule(prefix: str = "redbeat:") -> str:
    """:data:`CATEGORIES` on the keys and channels under ``prefix``."""
    return " ".join([f"~{prefix}*", f"&{prefix}*", *(f"+{c}" for c in CATEGORIES)])


def rule_commands(features: Iterable[str]) -> list[str]:
    """The commands of ``features``, in rule order, without repeats."""
    commands: list[str] = []
    for feature in features:
        commands += [c for c in FEATURES[feature] if c not in commands]
    return commands


def rule(*features: str, prefix: str = "redbeat:") -> str:
    """The ACL rule for ``features`` (their commands, without repeats) on the keys under
    ``prefix``, as ``ACL SETUSER <user> reset on ><password>`` takes it. The sentinels' rule
    has no keys."""
    commands = rule_commands(features)
    keys = [] if features == ("sentinels",) else [f"~{prefix}*"]
    channels = [f"&{prefix}*"] if CHANNEL_FEATURES.intersection(features) else []
    return " ".join([*keys, *channels, *(f"+{command}" for command in commands)])


def liveness_grant(lock_key: str, refused: str = "") -> list[str]:
    """What to grant for the lock's liveness, given the server's refusal: the command or the
    channel it names when it names one, else everything liveness uses."""
    channel = f"&{lock_key}:*"
    command = _COMMAND.search(refused)
    if command:
        return [f"+{command.group(1)}"]
    if "channel" in refused.lower():
        return [channel]
    return [channel, "+subscribe", "+pubsub|numsub", "+publish"]


# ------------------------------------------------------------------------------ refusals

#: "...no permissions to run the 'wait' command" (Redis 7.0: "this user has", 7.2+ and Valkey:
#: "User beat has"; inside a script Valkey adds "ACL failure in script: ").
_COMMAND: Final = re.compile(r"no permissions to run the '([^']+)' command")
_KEY: Final = re.compile(r"(?i)no permissions to access .*key|can't access .*keys")
#: Redis 7.0 inside a script: the command is not named, the script is (by its SHA1).
_SCRIPT_ACL: Final = re.compile(
    r"can't run this command or subcommand script: ([0-9a-f]{40}), on @user_script:(\d+)"
)
_IS_SCRIPT_ACL: Final = re.compile(r"^ACL failure in script|^The user executing the script can't")


def refusal(
    exc: BaseException, client: Any, *, user: str | None = None
) -> StorePermissionError | None:
    """The :class:`StorePermissionError` for an ACL refusal, naming the permission to grant and
    how; None for any other error. ``exc`` may be an error raised while handling the refusal
    (redis-py's cluster client reports a refused CLUSTER SLOTS as "Cluster mode is not
    enabled"): its causes are searched. ``user`` is the ACL user when ``client`` cannot tell
    (it failed to build)."""
    found = _refused(exc)
    if found is None:
        return None
    message = str(found)
    user = user or username(client)
    command = _COMMAND.search(message)
    if command:
        candidates = [command.group(1)]
        what = f"the command {command.group(1).replace('|', ' ').upper()}"
        if command.group(1).startswith("sentinel|"):  # refused by a sentinel, to its own user
            user = _sentinel_username(client)
            what += " on a sentinel"
    elif _KEY.search(message):
        candidates = ["~<redbeat_key_prefix>*"]
        what = "access to a key (RedBeat's keys are those under redbeat_key_prefix: ~redbeat:* "
        what += "with the default prefix)"
    else:  # Redis 7.0 names the script (SHA1) and its line, not the command
        script = _SCRIPT_ACL.search(message)
        candidates = _script_commands(script.group(1), script.group(2)) if script else []
        what = f"{' or '.join(c.upper() for c in candidates) or 'a command'} in a script"
    missing = " or ".join(c if c.startswith("~") else f"+{c}" for c in candidates) or None
    if missing is None:
        grant = f"see what it has with ACL GETUSER {user}"
    elif len(candidates) == 1:
        grant = f"Grant it: ACL SETUSER {user} {missing}"
    else:
        grant = f"Grant the one it lacks ({missing}): ACL SETUSER {user} +<command>"
    return RedisPermissionError(
        f"Redis refused {what} to the ACL user {user!r} ({message.rstrip('.')}). {grant}. "
        "The rules each RedBeat feature needs are in the security guide (ACL).",
        missing=missing,
    )


def _refused(exc: BaseException | None) -> BaseException | None:
    """The ACL refusal among ``exc`` and its causes, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, redis.exceptions.NoPermissionError) or (
            isinstance(exc, redis.exceptions.ResponseError) and _IS_SCRIPT_ACL.search(str(exc))
        ):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def username(client: Any) -> str:
    """The ACL user the client logs in as, for the advice (``default`` without one)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None and hasattr(client, "get_default_node"):  # a cluster client
        node = client.get_default_node()
        connection = getattr(node, "redis_connection", None)
        pool = getattr(connection, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", {}) or {}
    if kwargs.get("credential_provider") is not None:
        return "<user>"  # asking the provider could be slow, or have side effects
    return str(kwargs.get("username") or "default")


def _sentinel_username(client: Any) -> str:
    """The ACL user the client logs in to the sentinels as (``sentinel_kwargs``)."""
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    kwargs = getattr(manager, "sentinel_kwargs", {}) or {}
    return str(kwargs.get("username") or "default")


def _script_commands(sha: str, line: str) -> list[str]:
    """The command(s) on ``line`` of RedBeat's script with this SHA1 (all of the script's if
    that line has none), lower case; [] for a script that is not RedBeat's."""
    for name in scripts.SCRIPT_NAMES:
        source = scripts.source(name)
        if hashlib.sha1(source.encode()).hexdigest() == sha:  # noqa: S324 (Redis's own id)
            lines = source.splitlines()
            number = int(line)
            on_line = script_commands(lines[number - 1]) if 0 < number <= len(lines) else []
            return on_line or script_commands(source)
    return []


def script_commands(source: str) -> list[str]:
    """The commands a Lua script sends, lower case, in order: the quoted names in the first
    argument of each ``redis.call`` / ``redis.pcall`` (``keep and 'HSETNX' or 'HSET'`` too)."""
    found: list[str] = []
    for call in re.finditer(r"redis\.p?call\(([^,)]*)(?:,\s*'([A-Za-z]+)')?", source):
        for quoted in re.findall(r"'([A-Za-z]+)'", call.group(1)):
            name = quoted.lower()
            if name in _CONTAINERS and call.group(2):  # PUBSUB NUMSUB: ACL's pubsub|numsub
                name = f"{name}|{call.group(2).lower()}"
            if name not in found:
                found.append(name)
    return found


#: Commands whose ACL names include their subcommand.
_CONTAINERS: Final = frozenset({"pubsub", "script", "cluster", "client", "object"})


def warn_wait_refused(exc: Exception, client: Any, *, warned: bool) -> bool:
    """``WAIT`` was refused after a commit that is done: log it (once, ``warned`` says whether
    it was) and let the tick go on, as when replicas do not answer in time. Returns True."""
    if not warned:
        user = username(client)
        logger.error(
            "beat: Redis refused WAIT to the ACL user %r (%s): redbeat_replica_acks cannot "
            "confirm that replicas have the commits, and the beat goes on without that "
            "confirmation. Grant it: ACL SETUSER %s +wait",
            user,
            exc,
            user,
        )
    return True


def all_commands(features: Iterable[str] = FEATURES) -> set[str]:
    """Every command the given features' rules allow."""
    return {command for feature in features for command in FEATURES[feature]}
