"""Idempotent runs: a scheduled run's task id as a function of the entry's key and due time.

Under at-least-once delivery a run is published again when its beat dies between the publish
and the commit: the next leader claims the same entry at the same due time. With
``redbeat_idempotent_task_ids`` both publishes carry the same task id (a UUID 5 of the key and
the due time in microseconds), so a worker or a result backend can tell the second from a new
run and drop it. An id the entry's options already set is kept; run-now requests, which are
runs of their own, get Celery's random ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Final

import attrs

from redbeat_core.planning import Settled

__all__ = ["NAMESPACE", "task_id_for", "with_task_ids"]

#: The UUID 5 namespace of RedBeat's run ids, fixed forever: changing it changes every id.
NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_DNS, "runs.redbeat")


def task_id_for(key: str, due_at: float) -> str:
    """The task id of the run of the entry stored under ``key`` due at ``due_at`` (Unix
    seconds). Rounded to the microsecond: due times are whole microseconds (datetimes) or
    milliseconds (scores), and two beats computing one a different way differ by far less."""
    return str(uuid.uuid5(NAMESPACE, f"{key}@{round(due_at * 1_000_000)}"))


def with_task_ids(settled: Settled, key_for: Callable[[str], str]) -> Settled:
    """``settled`` with each scheduled run's task id fixed (see the module's docstring)."""
    publish = []
    changed = False
    for index, (name, entry, due_at) in enumerate(settled.publish):
        options = entry.options or {}
        if index not in settled.manual and "task_id" not in options:
            entry.options = {**options, "task_id": task_id_for(key_for(name), due_at)}
            changed = True
        publish.append((name, entry, due_at))
    return attrs.evolve(settled, publish=tuple(publish)) if changed else settled
