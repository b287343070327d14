"""``redbeat doctor``: what could stop or corrupt scheduling, each with a verdict and the fix.

The core checks what every backend shares: the lock's health (a leader, a recorded holder, a
lease that renews), the quarantine, statics no configuration defines any more, entries whose
task this app does not know. Each backend adds what only it can check through the
``redbeat_doctor`` hook (a server's version, an eviction policy that can drop schedule keys,
persistence, clock skew, the storage user's missing permissions).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs

from redbeat_core.exceptions import RedBeatError

__all__ = ["Finding", "Verdict", "run_doctor"]


class Verdict(enum.StrEnum):
    """How a check came out."""

    OK = "ok"
    #: Worth knowing; scheduling works.
    WARNING = "warning"
    #: Scheduling is stopped, or will lose or corrupt runs, until fixed.
    PROBLEM = "problem"


@attrs.frozen
class Finding:
    """One check's outcome: ``check`` (a short name), the verdict, what was found and, unless
    it is OK, the fix."""

    check: str
    verdict: Verdict
    detail: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "verdict": self.verdict.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def run_doctor(app: Any) -> list[Finding]:
    """Every check, the core's first, then each backend's and plugin's."""
    from redbeat_core.catalog import Schedule
    from redbeat_core.runtime import get_runtime

    schedule = Schedule(app)
    runtime = get_runtime(app)
    findings: list[Finding] = []
    try:
        backend = runtime.backend
        findings += runtime.plugins.doctor(app=app, backend=backend)
        if any(f.verdict is Verdict.PROBLEM and f.check == "connection" for f in findings):
            return findings  # nothing else can be read
        findings.append(_lock(schedule))
        findings.append(_quarantine(schedule))
        findings.append(_statics(app, runtime.store.statics()))
        entries = list(schedule.entries())
        findings.append(_tasks(app, entries))
        findings += _policies(schedule, runtime.store, entries)
    except RedBeatError as exc:
        findings.append(
            Finding("storage", Verdict.PROBLEM, str(exc), "fix the storage settings or server")
        )
    return findings


def _lock(schedule: Any) -> Finding:
    try:
        status = schedule.lock_status()
    except ValueError as exc:
        if "without a lock" in str(exc):
            return Finding("lock", Verdict.OK, str(exc))
        return Finding("lock", Verdict.WARNING, f"cannot check: {exc}", None)
    if not status.held:
        return Finding(
            "lock",
            Verdict.PROBLEM,
            f"no beat holds the lock {status.key}: nothing is being scheduled",
            "start a beat: celery -A proj beat -S redbeat.RedBeatScheduler",
        )
    holder = status.holder.describe() if status.holder is not None else "?"
    standbys = f", {len(status.standbys)} standby(s) seen" if status.standbys else ", no standby"
    if status.holder is not None and status.holder.identity is None:
        return Finding(
            "lock",
            Verdict.WARNING,
            f"held by {holder}{standbys}",
            "finish the migration: stop the celery-redbeat beats once RedBeat beats run",
        )
    return Finding(
        "lock", Verdict.OK, f"held by {holder}; lease {status.lease_left:.1f}s left{standbys}"
    )


def _quarantine(schedule: Any) -> Finding:
    found = schedule.quarantine()
    if not found:
        return Finding("quarantine", Verdict.OK, "no entry is quarantined")
    names = ", ".join(sorted(found)[:5]) + (", ..." if len(found) > 5 else "")
    return Finding(
        "quarantine",
        Verdict.WARNING,
        f"{len(found)} entries are quarantined and do not run: {names}",
        "see why with `redbeat quarantine`, fix them, then `redbeat quarantine restore NAME`",
    )


def _statics(app: Any, stored: Iterable[str]) -> Finding:
    configured = set((app.conf.beat_schedule or {}).keys())
    stale = sorted(set(stored) - configured)
    if not stale:
        return Finding("statics", Verdict.OK, "every stored static is in beat_schedule")
    return Finding(
        "statics",
        Verdict.WARNING,
        f"stored as statics but not in this app's beat_schedule: {', '.join(stale[:5])}"
        + (", ..." if len(stale) > 5 else ""),
        "a beat started with this configuration deletes them; if they should stay, add them to "
        "beat_schedule (or check that this is the app the beats run)",
    )


def _tasks(app: Any, entries: list[Any]) -> Finding:
    app.loader.import_default_modules()
    known = set(app.tasks)
    unknown = sorted({info.task for info in entries if info.task and info.task not in known})
    if not unknown:
        return Finding("tasks", Verdict.OK, "every entry's task is registered in this app")
    return Finding(
        "tasks",
        Verdict.WARNING,
        f"tasks no module of this app registers: {', '.join(unknown[:5])}"
        + (", ..." if len(unknown) > 5 else ""),
        "a typo, or tasks defined only in the workers: workers without them reject the runs "
        "(redbeat_unknown_task = 'quarantine' makes the beat set such entries aside)",
    )


def _policies(schedule: Any, store: Any, entries: list[Any]) -> list[Finding]:
    """Policies that cannot work as written: calendars nobody declares (the entry runs through
    its blackout), overlap policies with no worker recording runs (published as 'allow')."""
    from redbeat_core.running import RunTracker

    findings = []
    calendars = {info.name for info in schedule.calendars()}
    missing = sorted(
        f"{info.name} ({name})"
        for info in entries
        for name in info.policy.get("blackouts") or ()
        if name not in calendars
    )
    if missing:
        findings.append(
            Finding(
                "calendars",
                Verdict.PROBLEM,
                f"entries name blackout calendars nobody declares: {', '.join(missing[:5])}"
                + (", ..." if len(missing) > 5 else ""),
                "declare them in redbeat_calendars or store them (`redbeat calendar set`), or "
                "fix the entries' blackouts: until then they run through their blackouts",
            )
        )
    overlapping = [info.name for info in entries if info.policy.get("overlap") in _HELD]
    if overlapping and isinstance(store, RunTracker) and not store.live_trackers():
        findings.append(
            Finding(
                "overlap",
                Verdict.WARNING,
                f"{len(overlapping)} entries have an overlap policy ({', '.join(overlapping[:5])}"
                f"{', ...' if len(overlapping) > 5 else ''}) and no worker records runs: they "
                "are published as with overlap 'allow'",
                "install RedBeat in the workers' environment (their `celery worker` then "
                "records runs) and leave redbeat_track_runs on",
            )
        )
    return findings


#: Overlap policies that need the workers to record runs.
_HELD = ("skip", "buffer_one")
