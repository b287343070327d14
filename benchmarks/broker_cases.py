"""The real-broker cases (issue 20): B1, B3 and B4 with a Valkey server as the Celery broker.

``python -m benchmarks --broker redis --rtt-ms 0,1`` runs, at each round trip, RedBeat,
celery-redbeat 2.4.2 and Celery alone (no scheduler: ``apply_async`` of the same tasks, one by
one, and inside ``producer.batch()`` the way RedBeat's dispatch groups a tick's runs,
``redbeat_publish_batch`` = 100), each against fresh servers (:mod:`benchmarks.broker_env`).
Repetitions are interleaved (one of each side, then the next round), so a burst of load on the
shared machine hits every side alike; the report shows medians.

* B1: N stored, 1% due per busy tick: the ticks' time (they return once their batches reached
  the broker), their round trips to the schedule server, and Celery's publish alone per message.
* B3: N entries due at the same second; when the first and the last message reached the broker.
* B4: a real ``celery beat`` with 50 entries due every second; each message's lateness is when
  it reached the broker minus its due second.

Every measurement ends with the broker's count (:func:`benchmarks.broker_env.account`): a lost,
doubled or unknown message fails the case, and the runner exits non-zero.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import run
from benchmarks.broker_env import BrokerEnv, BrokerWatch, Message, account, broker_env
from benchmarks.run import Runner

#: Messages per kombu batch, as RedBeat's ``redbeat_publish_batch`` default.
BATCH = 100
#: The Celery-alone columns: label -> messages per batch (1: one by one).
ALONE = {"alone": 1, "alone_batched": BATCH}
CASES = ("b1", "b3", "b4")


def _med(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def medians(reps: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """The median of each key over the repetitions, with its min and max."""
    out: dict[str, Any] = {"n": len(reps)}
    for key in keys:
        values = [r[key] for r in reps if r.get(key) is not None]
        if values:
            out[key] = statistics.median(values)
            out[key + "_min"] = min(values)
            out[key + "_max"] = max(values)
    return out


def params(env: BrokerEnv, **extra: Any) -> dict[str, Any]:
    return {"url": env.schedule_url, "broker": env.broker_url, **extra}


# ----------------------------------------------------------------------------- B1


def case_b1(runner: Runner, rtt: float) -> dict[str, Any]:
    s = runner.sizes
    reps, idle_reps = s["rb1_reps"], s["rb_idle_reps"]
    out: dict[str, Any] = {"sizes": {}, "alone": {}}
    for n in s["rb1_sizes"]:
        due = max(1, n // 100)
        for side in runner.sides:
            run.log(f"broker b1 rtt={rtt:g}ms N={n} due={due} {side}")
            with broker_env(rtt) as env:
                run.populate_here(env.schedule_direct, n)
                raw = run.run_worker(
                    runner.pythons[side],
                    side,
                    "ticks",
                    params(env, n=n, every=run.EVERY, due=due, reps=reps, idle_reps=idle_reps),
                )
                expected = [0, *range(1, 1 + reps * due)]
                _, counts = account(env.broker, None, f"b1 N={n} {side}", expected=expected)
            out["sizes"].setdefault(str(n), {})[side] = {
                "due": due,
                "idle": run.summarize(raw["idle"]),
                "busy": run.summarize(raw["busy"]),
                "rss_kib": raw["rss_kib"],
                "stored": raw["stored"],
                "counts": counts,
            }
            runner.note_load(f"broker b1 {rtt:g} {n} {side}")
    for label, batch in ALONE.items():
        run.log(f"broker b1 rtt={rtt:g}ms Celery alone, {label}")
        with broker_env(rtt) as env:
            raw = run.run_worker(
                runner.pythons["ours"],
                "ours",
                "publish_cost",
                params(env, n=s["rb1_alone_n"], reps=max(3, reps), batch=batch),
            )
            _, counts = account(
                env.broker, None, f"b1 {label}", expected=[0] * int(raw["published"])
            )
        out["alone"][label] = {**raw, "counts": counts}
    return out


# ----------------------------------------------------------------------------- B3


BURST_KEYS = (
    "first_after_due",
    "last_after_due",
    "per_second",
    "per_second_dispatching",
    "buffered_first_after_due",
    "round_trips",
    "ticks",
    "writes",
)


def burst_metrics(raw: dict[str, Any], messages: list[Message], n: int) -> dict[str, Any]:
    """When the burst's messages reached the broker, from its due second T; ``writes`` is the
    number of distinct arrival stamps (about one per batch, one per message without batches)."""
    due_at = float(raw["due_at"])
    ats = [m.at for m in messages if m.index >= 1 and m.at is not None]
    first, last = min(ats), max(ats)
    return {
        "first_after_due": first - due_at,
        "last_after_due": last - due_at,
        "per_second": n / (last - due_at) if last > due_at else None,
        "per_second_dispatching": (n - 1) / (last - first) if last > first else None,
        "buffered_first_after_due": float(raw["first"]) - due_at,
        "round_trips": raw.get("round_trips"),
        "ticks": raw.get("ticks"),
        "writes": len(set(ats)),
    }


def _burst_side(runner: Runner, rtt: float, side: str, n: int) -> dict[str, Any]:
    lead = runner.sizes["rb3_lead"]
    with broker_env(rtt) as env:
        if side in ALONE:
            warmup = 20
            with BrokerWatch(env.broker) as watch:
                raw = run.run_worker(
                    runner.pythons["ours"],
                    "ours",
                    "publish_burst",
                    params(env, n=n, batch=ALONE[side], lead=lead, warmup=warmup),
                )
                expected = [0] * warmup + list(range(1, n + 1))
                messages, counts = account(env.broker, watch, f"b3 {side}", expected=expected)
            lock = None
        else:
            run.populate_here(env.schedule_direct, n)
            with (
                run.LockMonitor(env.schedule_direct) as monitor,
                BrokerWatch(env.broker) as watch,
            ):
                raw = run.run_worker(
                    runner.pythons[side],
                    side,
                    "burst",
                    params(env, n=n, every=run.EVERY, lead=lead, timeout=600),
                )
                messages, counts = account(
                    env.broker, watch, f"b3 {side}", expected=[0, *range(1, n + 1)]
                )
            lock = monitor.window(raw["due_at"], raw["last"])
    return {**burst_metrics(raw, messages, n), "counts": counts, "lock": lock}


def case_b3(runner: Runner, rtt: float) -> dict[str, Any]:
    n, reps = runner.sizes["rb3_n"], runner.sizes["rb3_reps"]
    sides = [*runner.sides, *ALONE]
    raw: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for rep in range(reps):
        for side in sides:
            run.log(f"broker b3 rtt={rtt:g}ms burst n={n} {side} (round {rep + 1}/{reps})")
            raw[side].append(_burst_side(runner, rtt, side, n))
            runner.note_load(f"broker b3 {rtt:g} {side}")
    return {
        "n": n,
        "sides": {
            side: {"reps": runs, "median": medians(runs, BURST_KEYS)} for side, runs in raw.items()
        },
    }


# ----------------------------------------------------------------------------- B4


#: Publishes a beat announced this close to its stop signal (or after) may have been cut
#: short by it: missing ones are counted as lost at the stop, not as a failed count.
STOP_WINDOW = 0.2
PRECISION_KEYS = ("p50_ms", "p99_ms", "max_ms", "first_p50_ms", "first_p99_ms")


def _beat_side(runner: Runner, rtt: float, side: str) -> dict[str, Any]:
    s = runner.sizes
    entries, seconds, warmup = s["rb4_entries"], s["rb4_seconds"], s["rb4_warmup"]
    with (
        broker_env(rtt) as env,
        tempfile.TemporaryDirectory() as tmp,
        BrokerWatch(env.broker) as watch,
    ):
        if side in ALONE:
            raw = run.run_worker(
                runner.pythons["ours"],
                "ours",
                "publish_floor",
                params(env, n=entries, seconds=seconds, warmup=warmup, batch=ALONE[side]),
            )
            logged = [(float(t), int(i)) for t, i in raw["publishes"]]
            start = float(raw["start"])
            expected = [-1] + [i for _, i in logged]
            messages, counts = account(env.broker, watch, f"b4 {side}", expected=expected)
        else:
            beat_params = params(env, n=entries, every=1.0, relative=True, log_dir=tmp)
            beat = run.BeatProcess(runner.pythons[side], Path(tmp), beat_params, "beat")
            try:
                beat.wait_for_publishes(1, timeout=60)
                start = beat.publishes()[0][0]
                # Stopped 0.6 s past a whole second: between two seconds' publishes, not
                # during them (a stop interrupts celery-redbeat's publish in flight).
                end = math.ceil(start + warmup) + seconds + 1.6
                while time.time() < end:
                    beat.check_alive()
                    time.sleep(0.2)
            finally:
                stopped_at = time.time()
                beat.stop()
            logged = beat.publishes()
            messages, counts = account(
                env.broker,
                watch,
                f"b4 {side}",
                expected=[i for t, i in logged if t < stopped_at - STOP_WINDOW],
                at_stop=[i for t, i in logged if t >= stopped_at - STOP_WINDOW],
            )
    arrived = [(m.at, m.index) for m in messages if m.at is not None and m.index >= 0]
    result = run.analyze_precision(arrived, start + warmup, seconds, entries)
    buffered = run.analyze_precision(logged, start + warmup, seconds, entries)
    result["buffered_p99_ms"] = buffered["p99_ms"]
    result["counts"] = counts
    return result


def case_b4(runner: Runner, rtt: float) -> dict[str, Any]:
    s = runner.sizes
    sides = [*runner.sides, *ALONE]
    raw: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for rep in range(s["rb4_reps"]):
        for side in sides:
            run.log(
                f"broker b4 rtt={rtt:g}ms {s['rb4_entries']} entries, {s['rb4_seconds']:g}s, "
                f"{side} (round {rep + 1}/{s['rb4_reps']})"
            )
            raw[side].append(_beat_side(runner, rtt, side))
            runner.note_load(f"broker b4 {rtt:g} {side}")
    out: dict[str, Any] = {"entries": s["rb4_entries"], "seconds": s["rb4_seconds"], "sides": {}}
    for side, runs in raw.items():
        summary = medians(runs, (*PRECISION_KEYS, "buffered_p99_ms"))
        for key in ("publishes", "expected", "missed_runs", "double_runs"):
            summary[key] = sum(r[key] for r in runs)
        out["sides"][side] = {"reps": runs, "median": summary}
    return out


# ----------------------------------------------------------------------------- all


STEPS: dict[str, Callable[[Runner, float], dict[str, Any]]] = {
    "b1": case_b1,
    "b3": case_b3,
    "b4": case_b4,
}


def run_cases(
    runner: Runner, cases: list[str], rtts: list[float], errors: list[str]
) -> dict[str, Any]:
    """Every case at every round trip; a failed one is recorded in ``errors`` (the runner then
    exits non-zero) and the others still run."""
    out: dict[str, Any] = {"batch": BATCH, "rtt": {}}
    for rtt in rtts:
        here: dict[str, Any] = {}
        out["rtt"][f"{rtt:g}"] = here
        with broker_env(rtt) as env:
            here["ping_ms"] = env.ping_ms()
        run.log(f"broker rtt={rtt:g}ms: PING {here['ping_ms']}")
        for case in cases:
            only = runner.sizes["rb_only_at"].get(case)
            if only is not None and rtt != rtts[only]:
                continue
            t0 = time.monotonic()
            try:
                here[case] = STEPS[case](runner, rtt)
            except Exception:
                errors.append(f"broker {case} rtt={rtt:g}ms: {traceback.format_exc()}")
                run.log(f"broker case {case} rtt={rtt:g}ms FAILED:\n{traceback.format_exc()}")
            run.log(f"broker case {case} rtt={rtt:g}ms took {time.monotonic() - t0:.1f}s")
    return out
