"""What the dashboard shows, as JSON-ready dicts: the pages render them and the JSON
endpoints return them, so both always say the same thing.

Times are given three ways: UTC (ISO 8601), local (the app's time zone, the one its crontabs
are read in) and relative to now (``in 3 min``, ``2 s ago``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redbeat_core import words
from redbeat_core.catalog import EntryInfo
from redbeat_core.history import RunRecord
from redbeat_core.locks import LockStatus

__all__ = ["cluster_json", "entry_json", "moment_json", "record_json", "timeline"]


def moment_json(moment: datetime | None, tz: Any, now: datetime) -> dict[str, str] | None:
    """``{"utc": ISO, "local": "2026-12-05 10:30:00 CET", "relative": "in 3 min"}``."""
    if moment is None:
        return None
    local = moment.astimezone(tz)
    return {
        "utc": moment.astimezone(UTC).isoformat(),
        "utc_text": f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        "local": f"{local:%Y-%m-%d %H:%M:%S %Z}",
        "relative": words.relative(moment - now),
    }


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def record_json(record: RunRecord, tz: Any, now: datetime) -> dict[str, Any]:
    """A history record with its times shown."""
    return {
        "name": record.name,
        "outcome": record.outcome,
        "manual": record.manual,
        "due_at": moment_json(_at(record.due_at), tz, now),
        "at": moment_json(_at(record.at), tz, now),
        "lateness": round(record.lateness, 3),
        "task_id": record.task_id,
        "beat": record.beat,
        "epoch": record.epoch,
        "reason": record.reason,
    }


def entry_json(
    info: EntryInfo, tz: Any, now: datetime, last: RunRecord | None = None
) -> dict[str, Any]:
    """An entry as the list and its page show it: :meth:`EntryInfo.to_json` plus its times
    shown and, when its newest history record is given, that record's lateness."""
    data = info.to_json()
    data["next"] = moment_json(info.next_run, tz, now)
    # Celery stamps a new entry's last run "now", which is not a run.
    data["last"] = moment_json(info.last_run_at, tz, now) if info.total_run_count else None
    data["paused"] = moment_json(info.paused_at, tz, now)
    data["last_record"] = None if last is None else record_json(last, tz, now)
    return data


def cluster_json(status: LockStatus, lease: float, now: datetime) -> dict[str, Any]:
    """The beats as the cluster panel shows them. The leader extends its lease at every
    tick, so the time since its last tick is the lease's length less what is left of it; no
    holder means no beat ticked within the lease, which the page shows as a warning."""
    data: dict[str, Any] = status.to_json()
    holder = status.holder
    since = holder.since if holder is not None else None
    data["since_at"] = None if since is None else moment_json(_at(since), UTC, now)
    data["lease"] = lease
    data["last_tick_ago"] = (
        None if status.lease_left is None else round(max(lease - status.lease_left, 0.0), 3)
    )
    data["stale"] = not status.held
    return data


def timeline(records: list[RunRecord], width: int = 600, height: int = 120) -> dict[str, Any]:
    """The entry page's chart of recent runs: one bar per record, oldest on the left, its
    height the lateness (clipped to the chart), coloured by outcome. Drawn as SVG by the
    template, so the page needs no chart library."""
    shown = sorted(records, key=lambda r: r.at)[-40:]
    if not shown:
        return {"bars": [], "width": width, "height": height, "top": 0.0}
    top = max(*(abs(r.lateness) for r in shown), 0.001)
    step = width / 40  # a slot per run, the newest on the right
    left = width - step * len(shown)
    bars = []
    for index, record in enumerate(shown):
        tall = max(2.0, (height - 16) * min(abs(record.lateness) / top, 1.0))
        bars.append(
            {
                "x": round(left + index * step + step * 0.15, 1),
                "y": round(height - tall, 1),
                "w": round(step * 0.7, 1),
                "h": round(tall, 1),
                "outcome": record.outcome,
                "title": f"{_at(record.due_at):%H:%M:%S} UTC {record.outcome}"
                + (" (manual)" if record.manual else "")
                + f", {record.lateness:+.3f} s late",
            }
        )
    return {"bars": bars, "width": width, "height": height, "top": round(top, 3)}
