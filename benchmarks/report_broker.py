"""The real-broker part of ``RESULTS.md`` (issue 20): B1, B3 and B4 with a Valkey broker at each
round trip, the issue's targets beside the measured values, and what to expect in production,
computed from the measurements (:mod:`benchmarks.broker_cases` measures them)."""

from __future__ import annotations

from typing import Any

from benchmarks.report import _get, met, ms, num, ratio, table, us

RUN = "uv run python -m benchmarks --broker redis --rtt-ms 0,1 --merge"
SIDES = (
    ("ours", "ours"),
    ("theirs", "celery-redbeat"),
    ("alone", "Celery alone"),
    ("alone_batched", "Celery alone, batched"),
)
TARGETS = {
    "loopback_theirs": "10k burst on loopback: at least 3.5x celery-redbeat's rate",
    "loopback_alone": "10k burst on loopback: at least 65% of Celery alone's batched rate",
    "rtt1_theirs": "10k burst at 1 ms round trip: at least 10x celery-redbeat's rate",
    "first": "B3: first dispatch at most 20 ms after the due time",
    "b4": "B4 on a real broker: p99 at most Celery alone's (batched the same way) p99 + 2 ms",
    "counts": "every message counted on the broker (LLEN, distinct task ids and entries): "
    "none lost or doubled",
    "trips": "1 round trip per idle tick, 2 per busy tick",
    "memory": "beat memory at 1M stored at most 80 MB",
}
#: Round trips the production table is computed for (ms).
PRODUCTION_RTTS = (0.0, 1.0, 5.0)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _span(d: dict[str, Any] | None, key: str, fmt: Any) -> str:
    """The median, with min-max over the repetitions when there were several."""
    value = _get(d, key)
    if value is None:
        return "-"
    low, high = _get(d, key + "_min"), _get(d, key + "_max")
    if d and d.get("n", 1) > 1 and low is not None and high is not None and low != high:
        return f"{fmt(value)} ({fmt(low)}-{fmt(high)})"
    return str(fmt(value))


def _rtts(data: dict[str, Any]) -> list[str]:
    return sorted(data.get("rtt", {}), key=float)


def _ping(here: dict[str, Any]) -> str:
    p = here.get("ping_ms") or {}
    if not p:
        return ""
    return (
        f"PING measured: {p['direct_median']:.2f} ms direct, {p['schedule_median']:.2f} ms to "
        f"the schedule server, {p['broker_median']:.2f} ms to the broker (medians)"
    )


# ----------------------------------------------------------------------------- B1


def _b1_rows(here: dict[str, Any]) -> list[list[str]]:
    b1 = here.get("b1") or {}
    alone = b1.get("alone") or {}
    one = _get(alone, "alone", "seconds_per_publish")
    batched = _get(alone, "alone_batched", "seconds_per_publish")
    rows = []
    for n, sides in (b1.get("sizes") or {}).items():
        o, t = _get(sides, "ours", "busy"), _get(sides, "theirs", "busy")
        due = (sides.get("ours") or sides.get("theirs"))["due"]
        o_s, t_s = _get(o, "seconds"), _get(t, "seconds")
        o_per = o_s / due if o_s else None
        t_per = t_s / due if t_s else None
        o_beyond = o_per - batched if o_per is not None and batched else None
        t_beyond = t_per - one if t_per is not None and one else None
        rows.append(
            [
                f"{int(n):,}",
                f"{due:,}",
                ms(o_s),
                ms(t_s),
                ratio(o_s, t_s),
                us(o_per),
                us(t_per),
                us(o_beyond),
                us(t_beyond),
                ratio(o_beyond, t_beyond),
                f"{num(_get(sides, 'ours', 'idle', 'round_trips_max'))} / "
                f"{num(_get(o, 'round_trips_max'))} ({num(_get(o, 'ticks_max'))} tick)",
                f"{num(_get(sides, 'theirs', 'idle', 'round_trips'))} / "
                f"{num(_get(t, 'round_trips'))}",
            ]
        )
    return rows


def section_b1(data: dict[str, Any]) -> str:
    parts = [
        "### B1 on a real broker: busy tick cost",
        "",
        "N entries stored, 1% of them made due before each measured tick (as in B1 above); "
        "the time of the tick(s) that publish them all. A tick returns once its batches "
        "reached the broker (ours) or after each message's own round trip (celery-redbeat). "
        "Celery alone: `celery.beat`'s `Scheduler.apply_async` with no scheduler around it, "
        "per message, one by one and in batches of 100 (`producer.batch()`, as ours). Beyond "
        "the floor: ours minus Celery alone batched, celery-redbeat minus Celery alone one by "
        "one (each side's own way of publishing). Round trips: to the schedule server, idle "
        "tick / busy tick (max). Medians.",
    ]
    for rtt in _rtts(data):
        here = data["rtt"][rtt]
        alone = _get(here, "b1", "alone") or {}
        if not here.get("b1"):
            continue
        parts += [
            "",
            f"**{rtt} ms round trip.** Celery alone: "
            f"{us(_get(alone, 'alone', 'seconds_per_publish'))} µs per message one by one, "
            f"{us(_get(alone, 'alone_batched', 'seconds_per_publish'))} µs batched.",
            "",
            table(
                [
                    "N stored",
                    "due/tick",
                    "tick ours (ms)",
                    "theirs (ms)",
                    "ratio ours/theirs",
                    "µs/due ours",
                    "theirs",
                    "beyond the floor: ours (µs/due)",
                    "theirs",
                    "ratio",
                    "round trips ours idle / busy",
                    "theirs",
                ],
                _b1_rows(here),
            ),
        ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- B3


def _burst(here: dict[str, Any], side: str) -> dict[str, Any] | None:
    median: dict[str, Any] | None = _get(here, "b3", "sides", side, "median")
    return median


def _lock(here: dict[str, Any], side: str) -> str:
    reps = _get(here, "b3", "sides", side, "reps") or []
    windows = [r["lock"] for r in reps if r.get("lock")]
    if not windows:
        return "-"
    lapsed = any(w["lapsed"] for w in windows)
    low = [w["min_remaining_s"] for w in windows if w["min_remaining_s"] is not None]
    text = "lapsed" if lapsed else "held"
    return f"{text} (min TTL left {min(low):.1f} s)" if low else text


def _counted(here: dict[str, Any], case: str, side: str) -> str:
    reps = _get(here, case, "sides", side, "reps") or []
    if not reps:
        return "-"
    if not all(r["counts"]["ok"] for r in reps):
        return "**wrong**"
    sizes = sorted({r["counts"]["llen"] for r in reps})
    each = " / ".join(f"{n:,}" for n in sizes)
    lost = sum(r["counts"].get("lost_at_stop", 0) for r in reps)
    stop = f"; {lost} announced as the beat was stopped, never sent" if lost else ""
    return f"{each} = expected" + (f" (each of {len(reps)} runs)" if len(reps) > 1 else "") + stop


def section_b3(data: dict[str, Any]) -> str:
    parts = [
        "### B3 on a real broker: 10,000 entries due at the same second",
        "",
        "The entries are due at a whole second T; the beat loop runs until all are "
        "published. Times are when each message reached the broker (its keyspace "
        "notification, stamped on arrival) minus T, so a batched message counts when its "
        "batch was sent, not when `before_task_publish` fired (that time is shown too). "
        "Celery alone publishes the same 10,000 tasks from T on, with no scheduler. Rates are "
        "n / (last message - T). Beyond the floor: the last message's time minus Celery "
        "alone's, published the same way (ours: batched; celery-redbeat: one by one). "
        "Medians of the repetitions (min-max).",
    ]
    for rtt in _rtts(data):
        here = data["rtt"][rtt]
        if not here.get("b3"):
            continue
        o, t = _burst(here, "ours"), _burst(here, "theirs")
        a, ab = _burst(here, "alone"), _burst(here, "alone_batched")
        cols = [o, t, a, ab]

        def row(label: str, key: str, fmt: Any, cols: list[Any] = cols) -> list[str]:
            return [label, *(_span(c, key, fmt) for c in cols)]

        def beyond(side: Any, floor: Any) -> float | None:
            a_, b_ = _get(side, "last_after_due"), _get(floor, "last_after_due")
            return a_ - b_ if a_ is not None and b_ is not None else None

        o_beyond, t_beyond = beyond(o, ab), beyond(t, a)
        rows = [
            row("first message at the broker after T (ms)", "first_after_due", ms),
            row("last message at the broker after T (ms)", "last_after_due", ms),
            row("messages per second (n / last)", "per_second", _rate),
            row("messages per second, first to last", "per_second_dispatching", _rate),
            row("first `before_task_publish` after T (ms)", "buffered_first_after_due", ms),
            [
                "last message beyond Celery alone's, same batching (ms)",
                ms(o_beyond),
                ms(t_beyond),
                "",
                "",
            ],
            row("round trips to the schedule server", "round_trips", num),
            row("ticks", "ticks", num),
            ["lock during the burst", _lock(here, "ours"), _lock(here, "theirs"), "", ""],
            ["messages on the broker", *(_counted(here, "b3", s) for s, _ in SIDES)],
        ]
        rate_o = _get(o, "per_second")
        parts += [
            "",
            f"**{rtt} ms round trip** ({_ping(here)}). Ours vs celery-redbeat: "
            f"{ratio(rate_o, _get(t, 'per_second'))}x the rate; ours vs Celery alone batched: "
            f"{_pct(rate_o, _get(ab, 'per_second'))} of its rate; beyond the floor, ours "
            f"{ratio(t_beyond, o_beyond)}x less time than celery-redbeat.",
            "",
            table(["", *(label for _, label in SIDES)], rows),
        ]
    return "\n".join(parts)


def _pct(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{100 * a / b:.0f}%"


# ----------------------------------------------------------------------------- B4


def section_b4(data: dict[str, Any]) -> str:
    sizes = _get(data, "meta", "sizes") or {}
    parts = [
        "### B4 on a real broker: precision of a real `celery beat`",
        "",
        f"As B4 above ({sizes.get('rb4_entries')} entries due at every whole second, "
        f"{sizes.get('rb4_seconds', 0):g} s measured after {sizes.get('rb4_warmup', 0):g} s "
        f"of warm-up, runs per side: {sizes.get('rb4_reps')}, medians), but each message's "
        "lateness is when it reached the broker minus its due second. Celery alone: a process "
        "that publishes the same tasks at every whole second, one by one, or in one "
        "`producer.batch()` as ours sends a tick's runs.",
    ]
    keys = [
        ("lateness p50 (ms)", "p50_ms"),
        ("lateness p99 (ms)", "p99_ms"),
        ("lateness max (ms)", "max_ms"),
        ("first message of each second: p50 (ms)", "first_p50_ms"),
        ("first message of each second: p99 (ms)", "first_p99_ms"),
        ("p99 by `before_task_publish` (ms)", "buffered_p99_ms"),
    ]
    counts = [
        ("messages measured", "publishes"),
        ("expected (entries x due seconds)", "expected"),
        ("missed runs", "missed_runs"),
        ("double runs (same entry, same second)", "double_runs"),
    ]

    def f(v: Any) -> str:
        return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else f"{v:,}")

    for rtt in _rtts(data):
        here = data["rtt"][rtt]
        if not here.get("b4"):
            continue
        cols = [_get(here, "b4", "sides", s, "median") for s, _ in SIDES]
        rows = [[label, *(_span(c, k, f) for c in cols)] for label, k in keys]
        rows += [[label, *(f(_get(c, k)) for c in cols)] for label, k in counts]
        rows.append(["messages on the broker", *(_counted(here, "b4", s) for s, _ in SIDES)])
        parts += [
            "",
            f"**{rtt} ms round trip.**",
            "",
            table(["", *(label for _, label in SIDES)], rows),
        ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- production


def _loopback(data: dict[str, Any]) -> dict[str, Any] | None:
    here: dict[str, Any] | None = data.get("rtt", {}).get("0")
    return here


def _proxied(data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The lowest round trip above 0 measured (its key and results), to check the model."""
    above = [r for r in _rtts(data) if float(r) > 0]
    return (above[0], data["rtt"][above[0]]) if above else None


def _model(loopback: float | None, trips: float | None, rtt_ms: float) -> float | None:
    """Seconds at ``rtt_ms``: the loopback measurement plus one round trip per counted trip."""
    if loopback is None or trips is None:
        return None
    return loopback + trips * rtt_ms / 1000


def _checked(measured: float | None, modelled: float | None, fmt: Any) -> str:
    if measured is None:
        return "-"
    if modelled is None:
        return fmt(measured)
    return f"{fmt(measured)} (model {fmt(modelled)})"


def section_production(data: dict[str, Any], results: dict[str, Any]) -> str:
    """Per-tick cost and burst throughput at 0, 1 and 5 ms, from the loopback measurements
    plus the round trips each one makes, counted (schedule server: by the client; broker: one
    per batch of ``batch`` messages for RedBeat, one per message for celery-redbeat). The run
    through the proxy is shown beside, as the check of that model."""
    loop = _loopback(data)
    if loop is None:
        return ""
    batch = int(data.get("batch") or 100)
    proxied = _proxied(data)
    ping = _get(proxied[1], "ping_ms", "broker_median") if proxied else None
    check = f"measured at the proxy's {ping:.2f} ms (model)" if ping else None
    sizes = sorted(_get(loop, "b1", "sizes") or {}, key=int)
    rows = []
    for n in (*sizes, "1000000") if sizes else ():
        measured = n in sizes
        source = n if measured else sizes[-1]
        ours = _get(loop, "b1", "sizes", source, "ours") or {}
        due_src = int(ours.get("due") or 1)
        # 1% of 1M from the largest size measured, per due entry: from 100,000 (1,000 due, one
        # tick) that is ten such ticks, as a tick claims at most redbeat_batch_size (1,000).
        scale = 1.0 if measured else (int(n) // 100) / due_src
        idle = _get(ours, "idle", "seconds")
        busy = _get(ours, "busy", "seconds")
        busy_trips = _get(ours, "busy", "round_trips")
        if busy is None or busy_trips is None:
            continue
        busy, busy_trips = busy * scale, busy_trips * scale
        due = int(n) // 100
        trips = busy_trips + -(-due // batch)  # plus one broker round trip per batch
        cells = [f"{int(n):,}" + ("" if measured else " (extrapolated)"), f"{due:,}"]
        for rtt in PRODUCTION_RTTS:
            i, b = _model(idle, 1, rtt), _model(busy, trips, rtt)
            cells.append(f"{ms(i)} / {ms(b)}")
        if check and proxied:
            got = _get(proxied[1], "b1", "sizes", n, "ours") if measured else None
            cells.append(
                f"{_checked(_get(got, 'idle', 'seconds'), _model(idle, 1, ping), ms)} / "
                f"{_checked(_get(got, 'busy', 'seconds'), _model(busy, trips, ping), ms)}"
                if got
                else "-"
            )
        rows.append(cells)
    bursts = []
    n_burst = int(_get(loop, "b3", "n") or 0)
    for side, label, broker_trips in (
        ("ours", "RedBeat", -(-n_burst // batch)),
        ("theirs", "celery-redbeat", n_burst),
    ):
        m = _get(loop, "b3", "sides", side, "median")
        last, first = _get(m, "last_after_due"), _get(m, "first_after_due")
        trips = _get(m, "round_trips")
        if last is None or trips is None:
            continue
        total = trips + broker_trips
        cells = [label]
        for rtt in PRODUCTION_RTTS:
            t = _model(last, total, rtt)
            cells.append(f"{_rate(n_burst / t if t else None)}/s ({t:.1f} s)" if t else "-")
        if check and proxied:
            got = _get(proxied[1], "b3", "sides", side, "median", "last_after_due")
            cells.append(
                _checked(got, _model(last, total, ping), lambda v: f"{v:.1f} s") if got else "-"
            )
        cells.append(f"{ms(first)} ms")
        bursts.append(cells)
    if not rows and not bursts:
        return ""
    b1_big = _get(results, "b1", "1000000", "ours", "busy")
    b1_hk = _get(results, "b1", "100000", "ours", "busy")
    big_note = ""
    if b1_big and b1_hk:
        big = b1_big["seconds"] / (_get(results, "b1", "1000000", "ours", "due") or 1)
        hk = b1_hk["seconds"] / (_get(results, "b1", "100000", "ours", "due") or 1)
        big_note = (
            f" The memory:// run measured 1,000,000 stored at {big * 1e6:.0f} µs per due entry "
            f"against {hk * 1e6:.0f} at 100,000 (B1 above, `--big`): the size costs nothing."
        )
    extra = [check] if check else []
    parts = [
        "### What to expect in production",
        "",
        "Computed from the measurements above: each time measured on loopback, plus one round "
        "trip for every round trip it makes, counted (to the schedule server, by the client; "
        f"to the broker, one per batch of {batch} messages for RedBeat, one per message for "
        "celery-redbeat). The run through the proxy checks the model (the proxy's round trip "
        "is its PING, a little more than its setting). RedBeat with its defaults "
        f"(`redbeat_batch_size` 1,000, `redbeat_publish_batch` {batch}), the broker and the "
        "schedule server at the same round trip, on this 2-core machine; a faster or quieter "
        "machine lowers the loopback part, not the round trips.",
        "",
        "Per tick, RedBeat, with 1% of the entries due (busy: the tick publishes them all; "
        "idle: nothing due). 1,000,000 is extrapolated, not measured on a real broker: a tick "
        "claims at most 1,000 entries and reads only the head of the schedule, so 1% of "
        "1,000,000 is ten busy ticks of the largest size measured, and the idle tick is the "
        "same one round trip." + big_note,
        "",
        table(
            [
                "entries stored",
                "due",
                *(f"{r:g} ms: idle / busy tick (ms)" for r in PRODUCTION_RTTS),
                *extra,
            ],
            rows,
        )
        if rows
        else "(B1 not measured)",
        "",
        f"A burst of {n_burst:,} entries due at the same second: messages per second (the time "
        "until the last reached the broker), and, on loopback, when the first did.",
        "",
        table(
            ["", *(f"{r:g} ms" for r in PRODUCTION_RTTS), *extra, "first message, loopback"],
            bursts,
        )
        if bursts
        else "(B3 not measured)",
    ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- targets


def targets(data: dict[str, Any], results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    rtts = data.get("rtt", {})
    loop, one = rtts.get("0"), rtts.get("1")

    def rate(here: dict[str, Any] | None, side: str) -> Any:
        return _get(here, "b3", "sides", side, "median", "per_second")

    if loop and loop.get("b3"):
        r_t = ratio(rate(loop, "ours"), rate(loop, "theirs"))
        rows.append(
            [
                TARGETS["loopback_theirs"],
                f"{r_t}x",
                met(None if r_t == "-" else float(r_t) >= 3.5),
            ]
        )
        o, ab = rate(loop, "ours"), rate(loop, "alone_batched")
        rows.append(
            [
                TARGETS["loopback_alone"],
                f"{_pct(o, ab)} ({_rate(o)} vs {_rate(ab)} messages/s)",
                met(None if not o or not ab else o / ab >= 0.65),
            ]
        )
    if one and one.get("b3"):
        r_t = ratio(rate(one, "ours"), rate(one, "theirs"))
        rows.append(
            [TARGETS["rtt1_theirs"], f"{r_t}x", met(None if r_t == "-" else float(r_t) >= 10)]
        )
    firsts = {
        rtt: _get(here, "b3", "sides", "ours", "median", "first_after_due")
        for rtt, here in rtts.items()
    }
    firsts = {k: v for k, v in firsts.items() if v is not None}
    if firsts:
        rows.append(
            [
                TARGETS["first"],
                ", ".join(f"{ms(v)} ms at {k} ms" for k, v in sorted(firsts.items())),
                met(all(v <= 0.020 for v in firsts.values())),
            ]
        )
    p99s = []
    ok: bool | None = None
    for rtt, here in sorted(rtts.items()):
        o = _get(here, "b4", "sides", "ours", "median", "p99_ms")
        ab = _get(here, "b4", "sides", "alone_batched", "median", "p99_ms")
        if o is None or ab is None:
            continue
        p99s.append(f"{o:.2f} vs {ab:.2f} + 2 ms at {rtt} ms")
        ok = (ok is not False) and o <= ab + 2
    if p99s:
        rows.append([TARGETS["b4"], "; ".join(p99s), met(ok)])
    counted = [
        r["counts"]["ok"]
        for here in rtts.values()
        for case in ("b3", "b4")
        for side in (_get(here, case, "sides") or {}).values()
        for r in side["reps"]
    ] + [
        side["counts"]["ok"]
        for here in rtts.values()
        for side in (_get(here, "b1", "sizes") or {}).values()
        for side in side.values()
    ]
    b4_runs = {
        (rtt, name): (side["median"]["missed_runs"], side["median"]["double_runs"])
        for rtt, here in rtts.items()
        for name, side in (_get(here, "b4", "sides") or {}).items()
    }
    if counted:
        ours = [v for (_, name), v in b4_runs.items() if name == "ours"]
        clean = all(counted) and all(m == 0 and d == 0 for m, d in ours)
        others = [
            f"{name} at {rtt} ms: {m} missed / {d} double"
            for (rtt, name), (m, d) in sorted(b4_runs.items())
            if name != "ours" and (m or d)
        ]
        rows.append(
            [
                TARGETS["counts"],
                f"{len(counted)} measurements: every queue held exactly what was published; "
                "ours in B4: "
                + ", ".join(f"{m} missed / {d} double" for m, d in ours)
                + (f" (beside: {'; '.join(others)})" if others else ""),
                met(clean),
            ]
        )
    trips = [
        (
            _get(sides, "ours", "idle", "round_trips_max"),
            _get(sides, "ours", "busy", "round_trips_max"),
            _get(sides, "ours", "busy", "ticks_max"),
        )
        for here in rtts.values()
        for sides in (_get(here, "b1", "sizes") or {}).values()
    ]
    trips = [t for t in trips if t[0] is not None]
    if trips:
        rows.append(
            [
                TARGETS["trips"],
                "idle "
                + ", ".join(sorted({f"{i:g}" for i, _, _ in trips}))
                + "; busy per tick "
                + ", ".join(sorted({f"{b / max(k or 1, 1):g}" for _, b, k in trips})),
                met(all(i <= 1 and b / max(k or 1, 1) <= 2 for i, b, k in trips)),
            ]
        )
    rss = _get(results, "b1", "1000000", "ours", "memory", "rss_kib")
    rows.append(
        [
            TARGETS["memory"],
            f"{rss * 1024 / 1e6:.1f} MB (B5, the memory:// run)" if rss else "needs --big (B5)",
            met(rss / 1024 <= 80 * 1000**2 / 2**20 if rss else None),
        ]
    )
    return rows


def section_broker(results: dict[str, Any]) -> str:
    data = results.get("broker") or {}
    if not data:
        return ""
    meta = data.get("meta") or {}
    loads = [load[1][0] for load in meta.get("loads", [])]
    about = [
        f"- Measured {meta.get('date', '?')}, {meta.get('wall_seconds', 0):.0f} s; round trips "
        + ", ".join(f"{r} ms" for r in _rtts(data))
        + f"; kombu batch of {data.get('batch')} messages (RedBeat's `redbeat_publish_batch`)",
    ]
    for rtt in _rtts(data):
        ping = _ping(data["rtt"][rtt])
        if ping:
            about.append(f"- {rtt} ms: {ping}")
    if loads:
        about.append(
            f"- 1-minute load average: min {min(loads):.2f}, max {max(loads):.2f} (2 cores; "
            "sampled after each measurement)"
        )
    if meta.get("note"):
        about.append(f"- **Note:** {meta['note']}")
    for again in meta.get("remeasured", []):
        ones = [load[1][0] for load in again.get("loads", [])]
        about.append(
            f"- Measured again {again.get('date')}: {', '.join(again.get('what', []))}"
            + (f" (load {min(ones):.2f} to {max(ones):.2f})" if ones else "")
            + (f"; {again['note']}" if again.get("note") else "")
        )
    if meta.get("smoke"):
        about.append("- **Smoke run** (tiny sizes, 1 repetition): numbers are not meaningful.")
    parts = [
        "## Real broker (issue 20): a Valkey server as the Celery broker",
        "",
        "A second `valkey-server` is the Celery broker (`redis://`), and with a round trip "
        "above 0 ms a latency proxy (`benchmarks/latency_proxy.py`, its own process, each "
        "direction delayed by half the round trip) sits in front of both servers. Each "
        "measurement starts fresh servers. When a message reached the broker is taken at the "
        "broker: a keyspace notification per `LPUSH`, stamped on arrival by the runner "
        "(`benchmarks/broker_env.py`). After every measurement the queue is counted: `LLEN`, "
        "the notifications, distinct task ids and entry indexes must equal what was published, "
        "or the run fails.",
        "",
        *about,
        "",
        "### Targets (issue 20)",
        "",
        table(["target", "measured", ""], targets(data, results)),
    ]
    for text in (
        section_b1(data),
        section_b3(data),
        section_b4(data),
        section_production(data, results),
    ):
        if text:
            parts += ["", text]
    parts += ["", f"Reproduce: `{RUN}` (`--rtt-ms 0,1,5` adds 5 ms)"]
    if meta.get("errors"):
        parts += ["", "### Failed real-broker measurements", ""]
        for error in meta["errors"]:
            parts += ["```", error.rstrip(), "```"]
    return "\n".join(parts)
