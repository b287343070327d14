"""The key policy on Redis Cluster: every RedBeat key hashes to one slot.

RedBeat's Lua scripts read and write the entry hashes that the schedule's sorted set names, the
schedule itself and the statics and quarantine keys. On a cluster that only works when all
keys involved live in one hash slot, so the key prefix must carry a hash tag: the part between
the first ``{`` and the next ``}`` is all that is hashed, and every key that starts with
``{redbeat}:`` lands in the slot of ``redbeat``.

The policy, applied once at start-up (``adjust_config``, before any key is computed):

* the default prefix ``redbeat:`` (set or not) becomes ``{redbeat}:``, so the keys are
  ``{redbeat}::schedule``, ``{redbeat}::statics``, ``{redbeat}:<name>``, the lock
  ``{redbeat}::lock`` and its epoch ``{redbeat}::lock:epoch``;
* a custom prefix with a usable hash tag (``{myapp}:``) is kept as it is;
* a custom prefix without one (``myapp:``) is refused with a :class:`ConfigurationError` that
  names ``redbeat_key_prefix`` and shows the fixed prefix. It is not wrapped silently: the
  new prefix addresses other keys (the stored schedule would look empty) and another lock key
  (a beat still running with the old prefix would not be excluded), which must be a decision
  taken knowingly, with the migration in the documentation;
* the lock key (``redbeat_lock_key``) must hash to the prefix's slot too. A lock key derived
  from the prefix follows it to ``{redbeat}:``; one that hashes elsewhere is refused.
"""

from __future__ import annotations

from typing import Final

import attrs
from redis.crc import key_slot

from redbeat_core.config import DEFAULT_KEY_PREFIX, RedBeatConfig
from redbeat_core.exceptions import ConfigurationError

#: The default prefix on Redis Cluster: ``redbeat:`` with a hash tag.
CLUSTER_KEY_PREFIX: Final = "{redbeat}:"


def hash_tag(key: str) -> str | None:
    """The hash tag of ``key`` by Redis Cluster's rule, or None when the whole key is hashed.

    The tag is what lies between the first ``{`` and the first ``}`` after it, if that is not
    empty. When a prefix has a tag, every key that starts with the prefix has the same tag:
    the rule only looks at the first ``{`` and the ``}`` that closes it.
    """
    start = key.find("{")
    if start == -1:
        return None
    end = key.find("}", start + 1)
    if end == -1 or end == start + 1:
        return None
    return key[start + 1 : end]


def slot_of(key: str) -> int:
    """The cluster hash slot of ``key`` (the same CRC16 the server computes)."""
    return key_slot(key.encode("utf-8"))


def tagged_prefix(prefix: str) -> str:
    """The prefix a user should switch to: ``myapp:`` -> ``{myapp}:``, ``app`` -> ``{app}``."""
    core = prefix.rstrip(":")
    separator = prefix[len(core) :]
    core = core.replace("{", "").replace("}", "") or "redbeat"
    return "{" + core + "}" + separator


def adjust_config(config: RedBeatConfig) -> RedBeatConfig:
    """Apply the cluster key policy to ``config`` (registered as the backend's
    ``adjust_config``). Pure: no I/O. Raises :class:`ConfigurationError` for a prefix or lock
    key that cannot share one slot."""
    prefix = config.key_prefix
    if prefix == DEFAULT_KEY_PREFIX:
        new_prefix = CLUSTER_KEY_PREFIX
    elif hash_tag(prefix) is None:
        fixed = tagged_prefix(prefix)
        raise ConfigurationError(
            "redbeat_key_prefix",
            prefix,
            f"on Redis Cluster all of RedBeat's keys must hash to one slot, so the prefix needs "
            f"a hash tag: set redbeat_key_prefix = {fixed!r}. The keys under {prefix!r} are not "
            "read with the new prefix: copy them first (see 'Redis Cluster: migrating' in the "
            "backends documentation)",
        )
    else:
        new_prefix = prefix
    lock_key = config.lock_key
    if lock_key is not None and new_prefix != prefix and lock_key.startswith(prefix):
        lock_key = new_prefix + lock_key[len(prefix) :]
    if lock_key is not None and slot_of(lock_key) != slot_of(new_prefix):
        raise ConfigurationError(
            "redbeat_lock_key",
            lock_key,
            f"on Redis Cluster the lock key must hash to the same slot as the key prefix "
            f"{new_prefix!r} (slot {slot_of(new_prefix)}, not {slot_of(lock_key)}): start it "
            f"with the prefix, e.g. {new_prefix + ':lock'!r}, or set it to None to run "
            "without a lock",
        )
    if new_prefix == prefix and lock_key == config.lock_key:
        return config
    return attrs.evolve(config, key_prefix=new_prefix, lock_key=lock_key)
