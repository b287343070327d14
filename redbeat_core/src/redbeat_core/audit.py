"""The audit log: every change to the stored schedule, from any path, with who/what/when.

Changes come through few doors, and each records itself once: ``RedBeatSchedulerEntry.save()``
and ``.delete()`` (celery-redbeat's API, which the schedule API, the CLI and ``apply`` use too),
the schedule API's own bulk writes (``import_``, ``delete``, ``run_now``), and a beat's
start-up sync of ``beat_schedule``. The schedule API says what a save means ("pause", "update",
"apply: add") through :func:`audit_action`, so the log reads as the operator acted, not as
the store was written.

The log is a store capability (:class:`AuditStore`), bounded by ``redbeat_audit_limit``
(newest kept). Writing it costs one round trip after the change; it never fails the change: a
refused or broken audit write is logged and the change stands. The tick writes nothing here
(its runs are in the run history).
"""

from __future__ import annotations

import contextlib
import contextvars
import getpass
import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

from redbeat_core.exceptions import RedBeatError

if TYPE_CHECKING:
    from redbeat_core.runtime import Runtime

__all__ = ["AuditRecord", "AuditStore", "audit_action", "decode_audit", "record_change"]

logger = logging.getLogger(__name__)

#: Default of ``redbeat_audit_limit``.
DEFAULT_LIMIT: Final = 10_000
#: Names listed in one record; a bigger change (a sync, an import) says how many more.
NAMES_SHOWN: Final = 20

_action: contextvars.ContextVar[tuple[tuple[str, str | None], ...]] = contextvars.ContextVar(
    "redbeat_audit_action", default=()
)


@attrs.frozen
class AuditRecord:
    """One change to the schedule.

    :ivar at: when, Unix seconds.
    :ivar by: who (``user@host``, or a beat's ``host:pid``).
    :ivar action: what, as the operator acted (``add``, ``pause``, ``apply: update``,
        ``delete``, ``import``, ``sync beat_schedule``, ``run now``...).
    :ivar names: the entries changed (at most :data:`NAMES_SHOWN`; ``count`` says how many).
    :ivar count: how many entries the change touched.
    :ivar detail: more about it (a pause's reason, the file applied), or None.
    """

    at: float
    by: str
    action: str
    names: tuple[str, ...] = ()
    count: int = 0
    detail: str | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"at": round(self.at, 6), "by": self.by, "action": self.action}
        data["names"] = list(self.names)
        data["count"] = self.count
        if self.detail:
            data["detail"] = self.detail
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditRecord | None:
        """A stored record, or None when it is not one (another program's data)."""
        try:
            data = json.loads(text)
            at = float(data["at"])
            names = data.get("names") or []
            if not math.isfinite(at) or not isinstance(names, list):
                return None
            return cls(
                at=at,
                by=str(data["by"]),
                action=str(data["action"]),
                names=tuple(str(name) for name in names),
                count=int(data.get("count") or len(names)),
                detail=None if data.get("detail") is None else str(data["detail"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def decode_audit(texts: Sequence[str | bytes]) -> list[AuditRecord]:
    """The readable records among ``texts``, in their order."""
    return [record for text in texts if (record := AuditRecord.from_json(text)) is not None]


@runtime_checkable
class AuditStore(Protocol):
    """A store that keeps the audit log: the capability, on top of
    :class:`~redbeat_core.typing.ScheduleStore`."""

    def append_audit(self, records: Sequence[AuditRecord], limit: int) -> None:
        """Add records (one round trip), keeping the newest ``limit``."""
        ...

    def audit(self, limit: int) -> list[str]:
        """The newest ``limit`` records (JSON text), newest first."""
        ...


@contextlib.contextmanager
def audit_action(action: str, detail: str | None = None) -> Iterator[None]:
    """Say what the saves and deletes in the block mean ("pause", with the reason as
    ``detail``). Nested actions read outer first: ``apply: update``."""
    token = _action.set((*_action.get(), (action, detail)))
    try:
        yield
    finally:
        _action.reset(token)


def operator() -> str:
    """``user@host``: who made a change, when the caller does not say."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def record_change(
    runtime: Runtime,
    action: str,
    names: Iterable[str],
    *,
    by: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one record for a change just made (``action`` unless :func:`audit_action`
    says more). Nothing when the store keeps no log or ``redbeat_audit_limit`` is 0; a failed
    write is logged, never raised: the change itself is done."""
    store = runtime.store
    limit = runtime.config.audit_limit
    if limit <= 0 or not isinstance(store, AuditStore):
        return
    outer = _action.get()
    if outer:
        action = ": ".join(name for name, _ in outer)
        detail = "; ".join(d for _, d in outer if d) or detail
    listed = list(names)
    record = AuditRecord(
        at=time.time(),
        by=by or f"{operator()} (pid {os.getpid()})",
        action=action,
        names=tuple(listed[:NAMES_SHOWN]),
        count=len(listed),
        detail=detail,
    )
    try:
        store.append_audit([record], limit)
    except RedBeatError as exc:
        logger.warning(
            "redbeat: the change (%s of %s) is done, but the audit log was not written: %s",
            action,
            ", ".join(record.names) or "nothing",
            exc,
        )
