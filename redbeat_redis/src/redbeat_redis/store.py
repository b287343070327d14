"""``RedisStore``: the schedule in Redis, in celery-redbeat's layout.

``<prefix><name>`` is a hash with fields ``definition``, ``meta`` and (ours only) ``policy``;
``<prefix>:schedule`` is a sorted set of entry keys scored by due time; ``<prefix>:statics`` is
the set of names that came from ``beat_schedule``; ``<prefix>:quarantine`` maps the keys of
entries that cannot be scheduled to the reason. Every call is one command: the tick's two
steps are Lua scripts (``claim.lua``, ``commit.lua``), as are the writes outside it
(``write.lua``) and the bulk read (``load.lua``), so a call with 10,000 entries does not pay
redis-py's per-command overhead 40,000 times.

Every call goes through the retry policy and turns a connection failure that outlived it into
:class:`~redbeat_core.exceptions.StoreUnavailableError`, the one storage error the scheduler
knows, and an ACL refusal into its :class:`~redbeat_core.exceptions.StorePermissionError`
(:mod:`redbeat_redis.acl`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import redis.exceptions
from redis.client import NEVER_DECODE

from redbeat_core.audit import AuditRecord
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import BrokenStoreError
from redbeat_core.history import HistoryLimits, RunRecord
from redbeat_core.running import Reservation, Reserved
from redbeat_core.stores import StoreBase
from redbeat_core.typing import (
    ClaimResult,
    EntryUpdate,
    Fence,
    Quarantine,
    RunRequest,
    StoredEntry,
)
from redbeat_redis import acl, scripts
from redbeat_redis.errors import RedisBrokenError, RedisReadOnlyError, RedisUnavailableError
from redbeat_redis.retry import TRANSIENT_ERRORS, RetryPolicy
from redbeat_redis.settings import DEFAULT_REPLICA_ACK_TIMEOUT

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: How to make a beat wait for Redis at start-up rather than stop (see StoreUnavailableError).
WAIT_HINT = (
    "To wait for the storage at start-up instead, give the Redis backends a retry period: "
    "redbeat_redis_options = {'retry_period': seconds} (-1: forever)."
)
#: How RedBeat's scripts begin the error they answer for a key another program broke.
BROKEN_KEY_ERROR = "REDBEATKEY"
_SCHEDULE = ("the schedule", "a sorted set")
_STATICS = ("the static entries", "a set")
_QUARANTINE = ("the quarantine", "a hash")
_CLAIM_HEADER = 7
_CLAIM_STRIDE = 5
_REQUEST_STRIDE = 6


def call_translated(client: Any, retry: RetryPolicy, operation: Callable[[], T]) -> T:
    """Run ``operation`` under the retry policy; report a lost server as the one storage error
    the scheduler knows, so no Redis error escapes the beat loop.

    READONLY means the server we talk to was demoted (a failover behind a plain URL, a proxy or
    DNS name): drop the pooled connections so the next attempt connects afresh.

    Any other error the server answers (a key of the wrong type, WRONGTYPE, out of memory,
    a busy script, a refused command) is reported as :class:`BrokenStoreError`: the server is
    there but will not do the tick's work, and the scheduler survives it the same way, as a
    standby that retries. RedBeat's scripts check the keys they touch first and refuse
    broken shared data with a ``REDBEATKEY`` error naming the key, its type and the fix.
    """
    try:
        return retry.call(operation)
    except redis.exceptions.ReadOnlyError as exc:
        pool = getattr(client, "connection_pool", None)  # a cluster client has none
        if pool is not None:
            pool.disconnect()
        raise RedisReadOnlyError(f"Redis answered READONLY (demoted master?): {exc}") from exc
    except TRANSIENT_ERRORS as exc:
        raise RedisUnavailableError(f"Redis unreachable: {exc}", hint=WAIT_HINT) from exc
    except redis.exceptions.NoScriptError:
        raise  # handled by the callers that send raw EVALSHA
    except redis.exceptions.ResponseError as exc:
        refused = acl.refusal(exc, client)  # an ACL refusal: say what to grant
        if refused is not None:
            raise refused from exc
        message = str(exc)
        if message.startswith(BROKEN_KEY_ERROR):
            raise RedisBrokenError(f"key {message[len(BROKEN_KEY_ERROR) :].strip()}") from exc
        raise RedisBrokenError(f"Redis refused the command: {message}") from exc


def disconnect(client: Any) -> None:
    """Drop the client's pooled connections and keep the client usable: it reconnects on its
    next command (``ScheduleStore.close`` promises that). ``close()`` would do for a plain
    client, but ``RedisCluster.close()`` also forgets its nodes and slot map, after which the
    client fails (``'NoneType' object has no attribute 'redis_connection'``), and a client the
    user assigned to ``app.redbeat_redis`` would be broken for them too.

    A Sentinel-managed pool also reaches the sentinels through clients of their own (its
    ``sentinel_manager``); their connections are dropped too, or every closed scheduler would
    leave one open per sentinel it asked."""
    get_nodes = getattr(client, "get_nodes", None)
    if get_nodes is None:  # a plain or Sentinel-managed client: one pool
        pool = client.connection_pool
        pool.disconnect()
        manager = getattr(pool, "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            sentinel.connection_pool.disconnect()
        return
    for node in get_nodes():  # a cluster client: one pool per node
        connection = node.redis_connection
        if connection is not None:
            connection.connection_pool.disconnect()


def _text(value: Any) -> str | None:
    """Responses as ``str`` whatever the client's ``decode_responses`` (a user-assigned client
    may not decode, and the scripts that return entries are read undecoded). Bytes that are not
    UTF-8 are kept as lone surrogates (``surrogateescape``): the core quarantines such an entry
    with the reason, and :func:`_wire` writes its key back as the same bytes."""
    if value is None or value is False:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _request(
    name: Any, score: Any, definition: Any, meta: Any, policy: Any, request: Any
) -> RunRequest:
    """A run-now request from ``claim.lua``'s reply (see its header)."""
    text = _text(name) or ""
    stored = None
    if definition or meta or policy:
        stored = StoredEntry(text, _text(definition), _text(meta), _text(policy), float(score))
    by = None
    try:
        found = json.loads(_text(request) or "{}")
        by = found.get("by") if isinstance(found, dict) else None
    except ValueError:
        pass  # another program's value: who asked is not known
    return RunRequest(text, stored, float(score), None if by is None else str(by))


def _wire(text: str) -> str | bytes:
    """``text`` as sent: itself, or, when it holds bytes that were not UTF-8 (see
    :func:`_text`), those bytes. redis-py would encode it strictly (hiredis always does) and
    fail the whole command, so the commit that quarantines such an entry could never run."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _history_error(command: str, error: str) -> redis.exceptions.ResponseError:
    """The error redis-py would raise for ``command``'s ``error`` in ``commit.lua``'s pcall,
    which returns it as text: inside a script, Redis and Valkey do not name the command an
    ACL refused, so it is named here, as a refusal outside a script is."""
    if "NOPERM" in error or "ACL" in error or "can't run this command" in error:
        return redis.exceptions.NoPermissionError(
            f"no permissions to run the '{command}' command ({error})"
        )
    return redis.exceptions.ResponseError(error)


def _score_arg(score: float | None) -> str:
    return "" if score is None else repr(float(score))


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@attrs.define
class RedisKeys:
    """The key layout for one prefix (celery-redbeat's names, plus ours)."""

    prefix: str
    schedule: str
    statics: str
    quarantine: str
    #: The schedule's run history (a list, newest first); each entry's is this plus
    #: ``:<name>`` (``redbeat::history:<name>``), beside it in the same hash slot.
    history: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.history:
            self.history = self.prefix + ":history"

    @classmethod
    def from_config(cls, config: RedBeatConfig) -> RedisKeys:
        return cls(
            prefix=config.key_prefix,
            schedule=config.schedule_key,
            statics=config.statics_key,
            quarantine=config.quarantine_key,
        )

    def entry(self, name: str) -> str:
        return self.prefix + name

    def entry_history(self, name: str) -> str:
        return self.history + ":" + name

    @property
    def audit(self) -> str:
        """The audit log: a list of changes to the schedule (JSON), newest first."""
        return self.prefix + ":audit"

    @property
    def requests(self) -> str:
        """The hash of run-now requests: entry name -> who asked and when (JSON)."""
        return self.prefix + ":run_now"

    def request(self, name: str) -> str:
        """A run-now request's member in the schedule."""
        return self.prefix + ":run_now:" + name

    @property
    def calendars(self) -> str:
        """The stored blackout calendars: a hash, name -> JSON spec."""
        return self.prefix + ":calendars"

    @property
    def trackers(self) -> str:
        """The workers recording runs (a sorted set of ``host:pid`` by lease end)."""
        return self.prefix + ":trackers"

    def queued(self, name: str) -> str:
        """The entry's published, not yet started runs (overlap policies): task ids."""
        return self.prefix + ":queued:" + name

    def running(self, name: str) -> str:
        """The entry's running runs (overlap policies): task ids by lease end."""
        return self.prefix + ":running:" + name

    def name(self, key: str) -> str:
        return key[len(self.prefix) :] if key.startswith(self.prefix) else key


@attrs.define
class RedisStore(StoreBase):
    """The :class:`~redbeat_core.typing.ScheduleStore` for Redis and Valkey.

    The required methods of :class:`~redbeat_core.stores.StoreBase`, each one command (a
    script or a single read), plus ``count`` and ``rank`` answered by the server.
    """

    client: Any
    keys: RedisKeys
    retry: RetryPolicy
    #: Replicas that must have a commit before it returns (``redbeat_replica_acks``; 0: none).
    replica_acks: int = 0
    replica_ack_timeout: float = DEFAULT_REPLICA_ACK_TIMEOUT
    _scripts: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)
    #: True while commits get fewer acknowledgements than asked (warned once per episode).
    _short_of_acks: bool = attrs.field(default=False, init=False, repr=False)
    #: True once a refused WAIT (ACL) was reported.
    _wait_refused: bool = attrs.field(default=False, init=False, repr=False)
    #: True while history writes are refused (reported once per episode).
    _history_refused: bool = attrs.field(default=False, init=False, repr=False)

    def _script(self, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = scripts.register(self.client, name)
        return script

    def _call(self, operation: Callable[[], T]) -> T:
        return call_translated(self.client, self.retry, operation)

    def _run_undecoded(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script that returns stored entries, its reply left as bytes (redis-py's
        ``NEVER_DECODE``) and decoded per field by :func:`_text`: a decoding client would fail
        the whole reply on one value that is not UTF-8, and every tick with it. A server that
        lost its script cache (NOSCRIPT) gets it loaded, as ``Script`` does."""
        script = self._script(name)
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)

        def run() -> Any:
            try:
                return self.client.execute_command(*command, **{NEVER_DECODE: True})
            except redis.exceptions.NoScriptError:
                self.client.script_load(script.script)
                return self.client.execute_command(*command, **{NEVER_DECODE: True})

        return self._call(run)

    # ----------------------------------------------------------------- the tick

    def claim_due(
        self,
        fence: Fence | None,
        now: float,
        limit: int,
        *,
        history: Sequence[RunRecord] = (),
        limits: HistoryLimits = HistoryLimits(),  # noqa: B008 (frozen)
    ) -> ClaimResult:
        """``claim.lua``: the fence, the run records of the last busy tick, and the due
        entries and run-now requests, one round trip."""
        keys = [self.keys.schedule, self.keys.quarantine]
        args: list[Any] = [repr(float(now)), int(limit), self.keys.prefix, "", 0]
        if fence is not None:
            keys.append(fence.key)
            args[3:5] = [fence.token, _ms(fence.ttl)]
        args += [len(history), limits.per_entry, limits.total, self.keys.history]
        entry_history = self.keys.entry_history
        for record in history:
            args += [_wire(entry_history(record.name)), _wire(record.to_json())]
        reply = self._run_undecoded("claim", keys, args)
        if not reply or int(reply[0]) == 0:
            return ClaimResult(owned=False)
        if history:
            self._note_history(reply[6])
        server_time = int(reply[1]) + int(reply[2]) / 1_000_000
        next_due = _text(reply[3])
        moved = int(reply[4])
        asked = int(reply[5])
        start = _CLAIM_HEADER + 2 * moved
        first = start + _REQUEST_STRIDE * asked
        quarantined = [
            Quarantine(self.keys.name(_text(reply[i]) or ""), _text(reply[i + 1]) or "")
            for i in range(_CLAIM_HEADER, start, 2)
        ]
        requests = [
            _request(*reply[i : i + _REQUEST_STRIDE]) for i in range(start, first, _REQUEST_STRIDE)
        ]
        entries = []
        for i in range(first, len(reply), _CLAIM_STRIDE):
            key, score, definition, meta, policy = reply[i : i + _CLAIM_STRIDE]
            entries.append(
                StoredEntry(
                    name=self.keys.name(_text(key) or ""),
                    definition=_text(definition),
                    meta=_text(meta),
                    policy=_text(policy),
                    score=float(score),
                )
            )
        return ClaimResult(
            owned=True,
            entries=entries,
            next_due=float(next_due) if next_due is not None else None,
            server_time=server_time,
            quarantined=quarantined,
            requests=requests,
        )

    def request_run(self, name: str, by: str | None, at: float) -> None:
        """A run-now request: who asked in ``<prefix>:run_now``, then the request's member in
        the schedule, scored ``at`` (the next claim returns it). One round trip; a second
        request before the first is done replaces it."""
        request = json.dumps({"by": by, "at": at})
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.keys.requests, _wire(name), request)
        pipe.zadd(self.keys.schedule, {_wire(self.keys.request(name)): at})
        self._call(pipe.execute)

    def commit(
        self,
        fence: Fence | None,
        updates: Sequence[EntryUpdate],
        quarantine: Sequence[Quarantine] = (),
        *,
        requests_done: Sequence[str] = (),
    ) -> bool:
        """``commit.lua``: the updates, quarantines and run-now requests done, one round
        trip."""
        keys = [self.keys.schedule, self.keys.quarantine]
        args: list[Any] = ["", 0, len(updates), len(quarantine)]
        args += [len(requests_done), self.keys.requests]
        if fence is not None:
            keys.append(fence.key)
            args[0:2] = [fence.token, _ms(fence.ttl)]
        entry_key = self.keys.entry
        for update in updates:
            args += [_wire(entry_key(update.name)), update.meta or "", _score_arg(update.score)]
        for item in quarantine:
            args += [_wire(entry_key(item.name)), _wire(item.reason)]
        for name in requests_done:
            args += [_wire(self.keys.request(name)), _wire(name)]
        script = self._script("commit")
        if not self.replica_acks:
            return bool(self._call(lambda: script(keys=keys, args=args)))
        owned, acks = self._call(lambda: self._commit_and_wait(script, keys, args))
        if owned and acks is not None:
            self._note_acks(acks)
        return owned

    def _note_history(self, reply: Any) -> None:
        """The history write ``claim.lua`` reports refused (the claim itself is done):
        reported once until history is written again, naming the fix; the beat goes on."""
        if not reply:
            self._history_refused = False
            return
        if not self._history_refused:
            self._history_refused = True
            key, command, error = [*(_text(reply) or "").split("\n", 2), "", ""][:3]
            refused = acl.refusal(_history_error(command, error), self.client)
            logger.error(
                "beat: the run history was not written (%s %s: %s); scheduling goes on "
                "without it. %s",
                command.upper(),
                key,
                error,
                refused
                or f"Another program wrote that key: delete it (DEL {key}) and RedBeat starts "
                "it again",
            )

    def _commit_and_wait(
        self, script: Any, keys: list[str], args: list[Any]
    ) -> tuple[bool, int | None]:
        """``commit.lua`` then ``WAIT``, pipelined: one round trip and, what WAIT needs, one
        connection (it counts the replicas that have this connection's writes).

        Raw EVALSHA rather than the ``Script`` in the pipeline: redis-py would then send
        ``SCRIPT EXISTS`` first, a round trip more. A server without the script (restarted,
        or a promoted replica) answers NOSCRIPT; it is loaded and the pair sent again, which
        is safe as the commit writes the same values twice and WAIT only waits.
        """
        wait_ms = max(1, _ms(self.replica_ack_timeout))  # WAIT 0 would wait forever
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.replica_acks, wait_ms)
            owned, acks = pipe.execute(raise_on_error=False)
            if isinstance(owned, redis.exceptions.NoScriptError):
                self.client.script_load(script.script)  # same source, same sha
                continue
            if isinstance(acks, redis.exceptions.NoPermissionError) and not isinstance(
                owned, Exception
            ):  # the commit is done: go on without acks rather than lose its runs
                self._wait_refused = acl.warn_wait_refused(
                    acks, self.client, warned=self._wait_refused
                )
                return bool(owned), None
            for reply in (owned, acks):
                if isinstance(reply, Exception):
                    raise reply
            return bool(owned), int(acks)
        raise redis.exceptions.NoScriptError("commit.lua was not kept by the server")

    def append_history(self, records: Sequence[RunRecord], limits: HistoryLimits) -> None:
        """Records outside a tick: ``claim.lua`` with no fence, claiming nothing."""
        self.claim_due(None, 0.0, 0, history=records, limits=limits)

    def history(self, name: str | None, limit: int) -> list[str]:
        """``LRANGE`` of the entry's list, or of the schedule's when ``name`` is None."""
        key = self.keys.history if name is None else self.keys.entry_history(name)
        found = self._read(
            key, ("the run history", "a list"), lambda: self.client.lrange(_wire(key), 0, limit - 1)
        )
        return [text for text in (_text(item) for item in found) if text is not None]

    # ----------------------------------------------------------------- blackout calendars

    def stored_calendars(self) -> dict[str, str]:
        """``HGETALL`` of the calendars' hash (one that is not UTF-8 is left out)."""
        key = self.keys.calendars
        found = self._read(
            key, ("the blackout calendars", "a hash"), lambda: self.client.hgetall(key)
        )
        calendars: dict[str, str] = {}
        for name, spec in found.items():
            name_text, spec_text = _text(name), _text(spec)
            if name_text is not None and spec_text is not None:
                calendars[name_text] = spec_text
        return calendars

    def store_calendar(self, name: str, spec: str | None) -> None:
        key = self.keys.calendars
        if spec is None:
            self._call(lambda: self.client.hdel(key, _wire(name)))
        else:
            self._call(lambda: self.client.hset(key, _wire(name), spec))

    # ----------------------------------------------------------------- run tracking

    def reserve_runs(self, runs: Sequence[Reservation]) -> list[Reserved] | None:
        """``runs.lua reserve``: one round trip for the tick's runs with an overlap policy."""
        if not runs:
            return []
        keys: list[Any] = [self.keys.trackers]
        args: list[Any] = ["reserve", len(runs)]
        for run in runs:
            keys += [_wire(self.keys.queued(run.name)), _wire(self.keys.running(run.name))]
            args += [run.task_id, run.mode, repr(float(run.queued_for))]
        reply = self._runs(keys, args)
        if not reply or int(reply[0]) == 0:
            return None
        return [
            Reserved(bool(int(reply[i])), int(reply[i + 1]), int(reply[i + 2]))
            for i in range(1, 3 * len(runs), 3)
        ]

    def run_started(self, name: str, task_id: str, lease: float) -> None:
        keys = [self.keys.trackers, self.keys.queued(name), self.keys.running(name)]
        self._runs([_wire(k) for k in keys], ["started", task_id, repr(float(lease))])

    def run_finished(self, name: str, task_id: str) -> None:
        keys = [self.keys.trackers, self.keys.queued(name), self.keys.running(name)]
        self._runs([_wire(k) for k in keys], ["finished", task_id])

    def renew_runs(self, runs: Sequence[tuple[str, str]], lease: float) -> None:
        if not runs:
            return
        keys: list[Any] = [self.keys.trackers]
        keys += [_wire(self.keys.running(name)) for name, _ in runs]
        self._runs(keys, ["renew", repr(float(lease)), *(task_id for _, task_id in runs)])

    def tracker_alive(self, tracker: str, lease: float) -> None:
        self._runs([self.keys.trackers], ["alive", tracker, repr(float(lease))])

    def live_trackers(self) -> list[str]:
        found = self._runs([self.keys.trackers], ["trackers"]) or []
        return [text for text in (_text(item) for item in found) if text is not None]

    def _runs(self, keys: list[Any], args: list[Any]) -> Any:
        script = self._script("runs")
        return self._call(lambda: script(keys=keys, args=args))

    def append_audit(self, records: Sequence[AuditRecord], limit: int) -> None:
        """``LPUSH`` and ``LTRIM``, pipelined: one round trip."""
        key = self.keys.audit
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(key, *(_wire(record.to_json()) for record in records))
        pipe.ltrim(key, 0, limit - 1)
        self._call(pipe.execute)

    def audit(self, limit: int) -> list[str]:
        key = self.keys.audit
        found = self._read(
            key, ("the audit log", "a list"), lambda: self.client.lrange(key, 0, limit - 1)
        )
        return [text for text in (_text(item) for item in found) if text is not None]

    def _note_acks(self, acks: int) -> None:
        """Warn when fewer replicas than asked for have a commit, once until they acknowledge
        again. The beat goes on without them: stopping the schedule while a replica is away
        would miss every run, to avoid a duplicate that only a failover in that time causes."""
        if acks < self.replica_acks:
            if not self._short_of_acks:
                self._short_of_acks = True
                logger.warning(
                    "beat: %d of the %d replicas asked for (redbeat_replica_acks) acknowledged "
                    "the commit within %gs (redbeat_replica_ack_timeout); going on without "
                    "them. Until they do, a failover can bring back a due time already "
                    "published.",
                    acks,
                    self.replica_acks,
                    self.replica_ack_timeout,
                )
        elif self._short_of_acks:
            self._short_of_acks = False
            logger.warning(
                "beat: replicas acknowledge commits again (%d of %d)", acks, self.replica_acks
            )

    # ----------------------------------------------------------------- writes

    def write(
        self,
        saves: Sequence[StoredEntry] = (),
        deletes: Sequence[str] = (),
        *,
        keep_meta: bool = True,
        statics: Sequence[str] | None = None,
    ) -> None:
        """``write.lua``: saves, deletes and (when ``statics`` is given) the new set of static
        names, as one command whatever their number. The base class derives ``save``,
        ``save_many``, ``replace_statics``, ``delete``, ``delete_many`` and ``set_statics``
        from it, one round trip each."""
        args: list[Any] = [
            "1" if keep_meta else "0",
            len(saves),
            len(deletes),
            "0" if statics is None else "1",
        ]
        entry_key = self.keys.entry
        for entry in saves:
            score = entry.score if entry.score is not None and entry.score >= 0 else None
            args += [
                _wire(entry_key(entry.name)),
                entry.definition or "",
                entry.policy or "",
                entry.meta or "",
                _score_arg(score),
            ]
        for name in deletes:
            args += [_wire(entry_key(name)), _wire(self.keys.entry_history(name))]
        if statics is not None:
            args += statics
        keys = [self.keys.schedule, self.keys.quarantine, self.keys.statics]
        script = self._script("write")
        self._call(lambda: script(keys=keys, args=args))

    # ----------------------------------------------------------------- reads

    def load_many(self, names: Sequence[str]) -> list[StoredEntry | None]:
        if not names:
            return []
        keys = [self.keys.schedule]
        args = [_wire(self.keys.entry(name)) for name in names]
        reply = self._run_undecoded("load", keys, args)
        result: list[StoredEntry | None] = []
        for i, name in enumerate(names):
            definition, meta, policy, score = reply[4 * i : 4 * i + 4]
            if definition is None and meta is None and policy is None:
                result.append(None)
                continue
            result.append(
                StoredEntry(
                    name=name,
                    definition=_text(definition),
                    meta=_text(meta),
                    policy=_text(policy),
                    score=float(score) if score is not None else None,
                )
            )
        return result

    def rank(self, name: str) -> int | None:
        """``ZRANK``: faster than the base class's scan of the whole schedule."""
        key = self.keys.entry(name)
        rank = self._read(
            self.keys.schedule, _SCHEDULE, lambda: self.client.zrank(self.keys.schedule, key)
        )
        return None if rank is None else int(rank)

    def scheduled(self, start: int = 0, stop: int = -1) -> list[tuple[str, float]]:
        pairs = self._read(
            self.keys.schedule,
            _SCHEDULE,
            lambda: self.client.zrange(self.keys.schedule, start, stop, withscores=True),
        )
        return [(self.keys.name(_text(key) or ""), float(score)) for key, score in pairs]

    def count(self) -> int:
        """``ZCARD``: faster than the base class's read of the whole schedule."""
        schedule = self.keys.schedule
        return int(self._read(schedule, _SCHEDULE, lambda: self.client.zcard(schedule)))

    def names(self) -> list[str]:
        """Every stored entry's name, in no order: the hashes under the prefix, found with
        ``SCAN`` (1,000 keys a step; the server stays responsive, but the whole key space is
        walked: an operator's listing, never the tick's). RedBeat's own keys (``P:...``) are
        not entries."""
        pattern = _glob_escape(self.keys.prefix) + "*"
        found = self._call(
            lambda: list(self.client.scan_iter(match=pattern, count=1000, _type="hash"))
        )
        names = (self.keys.name(_text(key) or "") for key in found)
        return sorted({name for name in names if name and not name.startswith(":")})

    def statics(self) -> set[str]:
        statics = self.keys.statics
        members = self._read(statics, _STATICS, lambda: self.client.smembers(statics))
        return {_text(m) or "" for m in members}

    def quarantined(self) -> dict[str, str]:
        quarantine = self.keys.quarantine
        found = self._read(quarantine, _QUARANTINE, lambda: self.client.hgetall(quarantine))
        return {self.keys.name(_text(k) or ""): _text(v) or "" for k, v in found.items()}

    def _read(self, key: str, holds: tuple[str, str], operation: Callable[[], T]) -> T:
        """A read of one shared key; a key of the wrong type is named, with what it holds and
        the fix (``WRONGTYPE`` alone does not say which key)."""
        try:
            return self._call(operation)
        except BrokenStoreError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            found = _text(self._call(lambda: self.client.type(key)))
            what, expected = holds
            raise RedisBrokenError(
                f"key {key} holds a {found}, not {expected} (where RedBeat keeps {what}): "
                f"another program wrote it. Rename or delete it (DEL {key})"
            ) from exc

    def close(self) -> None:
        disconnect(self.client)
