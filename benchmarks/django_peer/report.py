"""The RESULTS.md section comparing django-celery-beat with RedBeat and celery-redbeat.

``benchmarks/report.py`` appends :func:`from_file`'s text when ``results-django.json``
exists. RedBeat's and celery-redbeat's numbers come from the same run when the runner measured
them (``--with-ours`` / ``--with-theirs``), else from ``benchmarks/results.json``, and the
section says which.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.report import mib, table

BENCH = Path(__file__).resolve().parents[1]
RUN = "uv run python -m benchmarks.django_peer"
TARGETS = {
    "b1": "B1 at N=10,000: a busy cycle at least 15x faster than django-celery-beat's",
    "b3": "B3: at least 20x django-celery-beat's dispatches per second",
    "all": "ahead on every case (B1 busy and idle at each N, B2, B3, B5, B6), on both databases",
}
ENGINES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def from_file(path: Path | None = None) -> list[str]:
    """The section for ``path`` (default ``benchmarks/results-django.json``), if it exists."""
    path = path or BENCH / "results-django.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [section(data, redis_results(data))]


def redis_results(data: dict[str, Any]) -> dict[str, Any]:
    """RedBeat's and celery-redbeat's results: this run's, or ``results.json``'s."""
    if data.get("redis"):
        return {**data["redis"], "source": "this run"}
    main = BENCH / "results.json"
    if not main.exists():
        return {"source": "none"}
    loaded = json.loads(main.read_text())
    return {**loaded["results"], "source": f"results.json ({loaded['meta'].get('date')})"}


def _get(d: Any, *path: Any) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _ms(seconds: float | None) -> str:
    return (
        "-"
        if seconds is None
        else f"{seconds * 1000:,.3g}"
        if seconds < 0.1
        else f"{seconds * 1000:,.0f}"
    )


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}x"


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def section(data: dict[str, Any], redis: dict[str, Any]) -> str:
    dj = data.get("django") or {}
    meta = data.get("meta") or {}
    checks: list[tuple[str, str, float | None, bool | None]] = []  # (db, what, ahead by, ok)
    out = [
        "## django-celery-beat 2.9 as a third column (issue 20)",
        "",
        "django-celery-beat's `DatabaseScheduler` (Django 5.2; "
        f"{_db_versions(dj)}) measured the way the cases above measure the Redis sides: every "
        "dispatch a real `apply_async` on `memory://` (the same Celery and kombu), counted by "
        "`before_task_publish`; queries counted by a Django execute wrapper; nothing patched. "
        "Entries are one shared `IntervalSchedule` and one `PeriodicTask` each, stored with "
        "`bulk_create`; a due entry is one whose `last_run_at` is an interval ago when the "
        "scheduler starts (it reads the table once, then keeps the schedule in memory until "
        "the table changes). Persistent connections (`CONN_MAX_AGE=None`), its best case: with "
        "Django's default it reconnects at every tick. Each measurement runs on a fresh "
        "database from a migrated template; PostgreSQL is a cluster of the runner's own on "
        "127.0.0.1 with default settings. RedBeat and celery-redbeat: "
        f"{redis.get('source')}. 'ours ahead' is django-celery-beat's time over ours (or our "
        "rate over its).",
        "",
        f"Run {meta.get('date')}, {meta.get('wall_seconds', 0):.0f} s, load average at the end "
        f"{', '.join(f'{v:.2f}' for v in meta.get('loads') or [])}"
        + (" (smoke: tiny sizes)" if meta.get("smoke") else "")
        + ".",
    ]
    out += _b1(dj, redis, checks)
    out += _b2(dj, redis, checks)
    out += _b3(dj, redis, checks)
    out += _b5(dj, redis, checks)
    out += _b6(dj, redis, checks)
    out += _targets(dj, checks)
    if meta.get("errors"):
        out += ["", "Failed cases:", ""] + [f"```\n{e.rstrip()}\n```" for e in meta["errors"]]
    return "\n".join(out)


def _db_versions(dj: dict[str, Any]) -> str:
    versions = []
    for engine, cases in dj.items():
        info = _get(next(iter((cases.get("b1") or {"": {}}).values()), {}), "side_info")
        if info:
            versions.append(f"{ENGINES[engine]} {info['database_version']}")
    return ", ".join(versions) if versions else "SQLite, PostgreSQL"


def _b1(dj: dict[str, Any], redis: dict[str, Any], checks: list[Any]) -> list[str]:
    busy_rows, idle_rows = [], []
    for engine, cases in dj.items():
        for n, d in (cases.get("b1") or {}).items():
            o, t = _get(redis, "b1", n, "ours"), _get(redis, "b1", n, "theirs")
            ours = _get(o, "busy", "seconds")
            theirs = _get(t, "busy", "seconds")
            mine = d["busy_seconds_per_entry"] * d["due"] if d["busy_seconds_per_entry"] else None
            cut = (
                ""
                if d["busy_complete"]
                else f" (cut at the cap after {d['busy'][-1]['published']}: extrapolated)"
            )
            ahead = _div(mine, ours)
            busy_rows.append(
                [
                    ENGINES[engine],
                    f"{int(n):,}",
                    f"{d['due']:,}",
                    _ms(mine) + cut,
                    f"{d['busy_seconds_per_entry'] * 1e3:.2f}",
                    f"{d['busy_queries_per_entry']:.2g}",
                    _ms(ours),
                    _ms(theirs),
                    _x(ahead),
                ]
            )
            checks.append((engine, f"B1 busy N={int(n):,}", ahead, None))
            idle_o = _get(o, "idle", "seconds")
            ahead_idle = _div(d["idle_seconds"], idle_o)
            idle_rows.append(
                [
                    ENGINES[engine],
                    f"{int(n):,}",
                    _ms(d["idle_seconds"]),
                    f"{d['idle_queries']:g}",
                    _ms(idle_o),
                    _ms(_get(t, "idle", "seconds")),
                    _x(ahead_idle),
                    f"{d['load']['seconds']:.2f} ({d['load']['queries']:g})",
                ]
            )
            checks.append((engine, f"B1 idle N={int(n):,}", ahead_idle, None))
    if not busy_rows:
        return []
    return [
        "",
        "### B1 next to django-celery-beat: busy and idle ticks",
        "",
        "A busy cycle: dispatching 1% of N (all due), median of the repetitions. "
        "django-celery-beat publishes one entry per `tick()` (Celery's heap), and every tick "
        "compares its whole in-memory schedule with the previous one and asks the database "
        "whether the schedule changed, so its cost per due entry grows with N. At N=100,000 "
        "it runs one cycle, cut at the cap (the per-entry cost is then what it dispatched so "
        "far, times the due count).",
        "",
        table(
            [
                "database",
                "N",
                "due",
                "django-celery-beat (ms)",
                "ms per due entry",
                "queries per due entry",
                "ours (ms)",
                "celery-redbeat (ms)",
                "ours ahead",
            ],
            busy_rows,
        ),
        "",
        "Idle tick (nothing due), and django-celery-beat's start-up read of N entries "
        "(its first tick):",
        "",
        table(
            [
                "database",
                "N",
                "django-celery-beat (ms)",
                "queries",
                "ours (ms)",
                "celery-redbeat (ms)",
                "ours ahead",
                "its first read, s (queries)",
            ],
            idle_rows,
        ),
        "",
        f"Reproduce: `{RUN} --cases b1 --with-ours --with-theirs`",
    ]


def _b2(dj: dict[str, Any], redis: dict[str, Any], checks: list[Any]) -> list[str]:
    rows = []
    for engine, cases in dj.items():
        for key, d in (cases.get("b2") or {}).items():
            ours = _get(redis, "b2", key, "ours", "seconds")
            theirs = _get(redis, "b2", key, "theirs", "seconds")
            ahead = _div(d["seconds"], ours)
            size, mode = key.split("/")
            note = ""
            if d.get("failed_with_the_same_statics"):
                note = (
                    f" (the same statics as ours: `{d['failed_with_the_same_statics']}`; "
                    f"measured with {d['distinct_intervals']} distinct intervals)"
                )
            rows.append(
                [
                    ENGINES[engine],
                    f"{int(size):,}",
                    mode + note,
                    f"{d['seconds']:.2f}",
                    f"{d['queries']:,.0f}",
                    _s(ours),
                    _s(theirs),
                    _x(ahead),
                ]
            )
            checks.append((engine, f"B2 S={int(size):,} {mode}", ahead, None))
    if not rows:
        return []
    return [
        "",
        "### B2 next to django-celery-beat: start-up with S statics",
        "",
        "Constructing the scheduler with S entries in `beat_schedule` (django-celery-beat: "
        "reads the table, then `update_or_create` per static; cold = no rows stored, warm = "
        "stored by a previous start). Median of the repetitions.",
        "",
        table(
            [
                "database",
                "S",
                "mode",
                "django-celery-beat (s)",
                "queries",
                "ours (s)",
                "celery-redbeat (s)",
                "ours ahead",
            ],
            rows,
        ),
        "",
        f"Reproduce: `{RUN} --cases b2 --with-ours --with-theirs`",
    ]


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}"


def _b3(dj: dict[str, Any], redis: dict[str, Any], checks: list[Any]) -> list[str]:
    rows = []
    o, t = _get(redis, "b3", "ours"), _get(redis, "b3", "theirs")
    for engine, cases in dj.items():
        d = cases.get("b3")
        if not d:
            continue
        ahead = _div(_get(o, "per_second"), d["per_second"])
        first = _div(d["first_after_due"], _get(o, "first_after_due"))
        rows.append(
            [
                ENGINES[engine],
                f"{d['per_second']:,.0f}",
                _ms(d["first_after_due"]),
                f"{d['total']:.1f}",
                f"{d['queries']:,}",
                f"{_get(o, 'per_second') or 0:,.0f}",
                _ms(_get(o, "first_after_due")),
                f"{_get(t, 'per_second') or 0:,.0f}",
                _x(ahead),
            ]
        )
        checks.append((engine, "B3 rate", ahead, None))
        checks.append((engine, "B3 first dispatch", first, None))
    if not rows:
        return []
    return [
        "",
        "### B3 next to django-celery-beat: a burst due at the same second",
        "",
        "All entries due at one whole second T, the scheduler started before T (it reads them "
        "at start, as after a restart); the beat loop (tick, sleep the returned interval) runs "
        "until all are published. Dispatches per second over T to the last publish.",
        "",
        table(
            [
                "database",
                "django-celery-beat per s",
                "its first after T (ms)",
                "its last after T (s)",
                "its queries",
                "ours per s",
                "ours first (ms)",
                "celery-redbeat per s",
                "ours ahead (rate)",
            ],
            rows,
        ),
        "",
        f"Reproduce: `{RUN} --cases b3 --with-ours --with-theirs`",
    ]


def _b5(dj: dict[str, Any], redis: dict[str, Any], checks: list[Any]) -> list[str]:
    rows = []
    for engine, cases in dj.items():
        for n, d in (cases.get("b1") or {}).items():
            mem = d.get("memory") or {}
            ours = _get(redis, "b1", n, "ours", "memory", "rss_kib")
            theirs = _get(redis, "b1", n, "theirs", "memory", "rss_kib")
            ahead = _div(mem.get("rss_kib"), ours)
            rows.append(
                [
                    ENGINES[engine],
                    f"{int(n):,}",
                    mib(mem.get("rss_kib")),
                    mib(mem.get("rss_before_kib")),
                    mib(d.get("rss_kib")),
                    mib(ours),
                    mib(theirs),
                    _x(ahead),
                ]
            )
            checks.append((engine, f"B5 N={int(n):,}", ahead, None))
    if not rows:
        return []
    return [
        "",
        "### B5 next to django-celery-beat: memory of the beat process",
        "",
        "RSS of a beat process with N stored, after one busy cycle (1% of N, cut at the cap) "
        "and idle ticks, as B5 above; django-celery-beat holds every enabled entry in memory.",
        "",
        table(
            [
                "database",
                "N",
                "django-celery-beat RSS (MiB)",
                "its RSS after imports",
                "its B1 process",
                "ours (MiB)",
                "celery-redbeat (MiB)",
                "ours ahead",
            ],
            rows,
        ),
        "",
        f"Reproduce: `{RUN} --cases b5 --with-ours --with-theirs`",
    ]


def _b6(dj: dict[str, Any], redis: dict[str, Any], checks: list[Any]) -> list[str]:
    rows = []
    sides = [("ours", "RedBeat (Valkey)"), ("theirs", "celery-redbeat (Valkey)")]

    def row(label: str, d: dict[str, Any]) -> list[str]:
        return [
            label,
            f"{d['entries_dispatched_by_both']} of {d['entries']}",
            f"{d['publishes']['a']} / {d['publishes']['b']}",
            f"{d['expected_runs']:,.0f}",
            f"{d['publishes_per_run']:.2f}",
        ]

    ours = _get(redis, "b6", "ours")
    for engine, cases in dj.items():
        d = cases.get("b6")
        if d:
            rows.append(row(f"django-celery-beat ({ENGINES[engine]})", d))
            ok = None
            if ours and "entries_dispatched_by_both" in ours:
                ok = ours["entries_dispatched_by_both"] == 0 and ours["duplicates"] == 0
                ok = ok and d["duplicates"] > 0
            checks.append((engine, "B6 duplicates", None, ok))
    for key, label in sides:
        d = _get(redis, "b6", key)
        if d and "entries_dispatched_by_both" in d:
            rows.append(row(label, d))
    if not rows:
        return []
    return [
        "",
        "### B6 next to django-celery-beat: two beats on one store",
        "",
        "Two real `celery beat` processes started together on one store (one database; one "
        "Valkey for the Redis sides), N entries in `beat_schedule` every few seconds; counted "
        "over a window after both are up: entries dispatched by both beats, and publishes per "
        "run that one beat alone makes (1.00: no duplicates). django-celery-beat has no lock: "
        "each beat dispatches every due entry. The Redis sides' second beat waits for the lock.",
        "",
        table(
            [
                "beats",
                "entries dispatched by both",
                "publishes beat a / beat b",
                "runs due",
                "publishes per run",
            ],
            rows,
        ),
        "",
        f"Reproduce: `{RUN} --cases b6 --with-ours --with-theirs`",
    ]


def _targets(dj: dict[str, Any], checks: list[Any]) -> list[str]:
    rows = []
    for engine in dj:
        mine = [c for c in checks if c[0] == engine]
        b1 = next((c for c in mine if c[1] == "B1 busy N=10,000"), None)
        b3 = next((c for c in mine if c[1] == "B3 rate"), None)
        for label, check, need in ((TARGETS["b1"], b1, 15.0), (TARGETS["b3"], b3, 20.0)):
            value = check[2] if check else None
            rows.append(
                [ENGINES[engine], label, _x(value), _met(None if value is None else value >= need)]
            )
        behind = [c[1] for c in mine if (c[3] is False) or (c[2] is not None and c[2] <= 1.0)]
        unknown = [c[1] for c in mine if c[2] is None and c[3] is None]
        text = "ahead on all " + str(len(mine) - len(unknown)) + " measured"
        if behind:
            text = "behind or level on: " + ", ".join(behind)
        if unknown:
            text += "; not compared: " + ", ".join(unknown)
        rows.append(
            [
                ENGINES[engine],
                TARGETS["all"],
                text,
                _met(None if unknown and not behind else not behind),
            ]
        )
    if not rows:
        return []
    return [
        "",
        "### Targets against django-celery-beat (issue 20)",
        "",
        table(["database", "target", "measured", ""], rows),
    ]


def _met(flag: bool | None) -> str:
    return "-" if flag is None else "met" if flag else "**not met**"
