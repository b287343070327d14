"""Copy a schedule from one key prefix to another, for the move to Redis Cluster.

On a cluster RedBeat keeps every key under a hash-tagged prefix (``{redbeat}:`` by default),
so a schedule stored under celery-redbeat's ``redbeat:`` (on a standalone Redis, or on a
cluster where celery-redbeat spread it over many slots) is not seen until it is copied::

    from redis import Redis
    from redis.cluster import RedisCluster
    from redbeat_cluster.migrate import copy_schedule

    source = RedisCluster(host="10.0.0.1", port=7000, decode_responses=True)  # or Redis(...)
    report = copy_schedule(source, source, source_prefix="redbeat:", target_prefix="{redbeat}:")
    print(report)

What is copied: every entry hash (all its fields: ``definition``, ``meta`` and RedBeat's
``policy``, so ``last_run_at`` survives), the schedule sorted set (members renamed to the new
entry keys, scores kept), the set of static names and the quarantine. The lock and its epoch
are not copied: stop every beat of the old prefix before copying (their lock does not exclude
beats of the new prefix) and start the new beats after. The source is only read; delete the
old keys yourself once the new beats run. Copying again with ``overwrite=True`` is idempotent.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["MigrationError", "MigrationReport", "copy_schedule"]

_GLOB_SPECIAL = "\\*?["


class MigrationError(RuntimeError):
    """The copy was refused (the target already holds a schedule)."""


@attrs.frozen
class MigrationReport:
    """What :func:`copy_schedule` copied."""

    entries: int
    scheduled: int
    statics: int
    quarantined: int
    #: Keys under the source prefix that are not RedBeat data (strings such as the lock).
    skipped: tuple[str, ...] = ()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _glob_escape(prefix: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in prefix)


def copy_schedule(
    source: Any,
    target: Any,
    *,
    source_prefix: str = "redbeat:",
    target_prefix: str = "{redbeat}:",
    overwrite: bool = False,
    batch: int = 500,
) -> MigrationReport:
    """Copy RedBeat's data from ``source_prefix`` on ``source`` to ``target_prefix`` on
    ``target`` (redis-py ``Redis`` or ``RedisCluster`` clients, the same one or two).

    Refuses (:class:`MigrationError`) when the target already has a schedule or statics,
    unless ``overwrite``. Writes go in MULTI/EXEC batches of ``batch`` commands, which on a
    cluster needs a hash-tagged ``target_prefix`` (all keys in one slot).
    """
    if source_prefix == target_prefix and source is target:
        raise MigrationError("source and target are the same keys")
    old = {
        "schedule": source_prefix + ":schedule",
        "statics": source_prefix + ":statics",
        "quarantine": source_prefix + ":quarantine",
    }
    new = {
        "schedule": target_prefix + ":schedule",
        "statics": target_prefix + ":statics",
        "quarantine": target_prefix + ":quarantine",
    }
    if not overwrite and (target.exists(new["schedule"]) or target.exists(new["statics"])):
        raise MigrationError(
            f"{new['schedule']} or {new['statics']} already exists on the target; pass "
            "overwrite=True to copy over it"
        )

    def renamed(key: str) -> str:
        return target_prefix + key[len(source_prefix) :] if key.startswith(source_prefix) else key

    writes: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    entries = 0
    skipped: list[str] = []
    for raw in source.scan_iter(match=_glob_escape(source_prefix) + "*", count=batch):
        key = _text(raw)
        if key in old.values() or (source is target and key.startswith(target_prefix)):
            continue
        if _text(source.type(key)) != "hash":
            skipped.append(key)
            continue
        fields = {_text(k): _text(v) for k, v in source.hgetall(key).items()}
        if fields:
            writes.append(("hset", (renamed(key),), {"mapping": fields}))
            entries += 1
    scored = source.zrange(old["schedule"], 0, -1, withscores=True)
    if scored:
        mapping = {renamed(_text(member)): float(score) for member, score in scored}
        writes.append(("zadd", (new["schedule"], mapping), {}))
    statics = [_text(name) for name in source.smembers(old["statics"])]
    if overwrite:
        writes.append(("delete", (new["statics"],), {}))
    if statics:
        writes.append(("sadd", (new["statics"], *statics), {}))
    quarantine = {renamed(_text(k)): _text(v) for k, v in source.hgetall(old["quarantine"]).items()}
    if quarantine:
        writes.append(("hset", (new["quarantine"],), {"mapping": quarantine}))
    for start in range(0, len(writes), batch):
        with target.pipeline(transaction=True) as pipe:
            for name, args, kwargs in writes[start : start + batch]:
                getattr(pipe, name)(*args, **kwargs)
            pipe.execute()
    return MigrationReport(
        entries=entries,
        scheduled=len(scored),
        statics=len(statics),
        quarantined=len(quarantine),
        skipped=tuple(sorted(skipped)),
    )
