"""The runner: django-celery-beat 2.9 next to RedBeat (and celery-redbeat), one run.

``python -m benchmarks.django_peer`` (repository root, workspace venv) measures
django-celery-beat's ``DatabaseScheduler`` on SQLite and on PostgreSQL (B1, B2, B3, B5, B6)
and, with ``--with-ours`` / ``--with-theirs``, RedBeat / celery-redbeat on the same machine in
the same run through ``benchmarks/run.py``'s own cases (so every ratio is same-run); without
them the report reads those two from ``benchmarks/results.json``. It writes
``benchmarks/results-django.json`` and its section, ``benchmarks/results-django.md``;
``benchmarks/RESULTS.md`` includes that section whenever it is rendered (``python -m
benchmarks``, or ``python -m benchmarks.report``) and the file exists. ``--smoke``: tiny
sizes, SQLite only, written to a temporary folder (``nox -s bench_smoke`` runs it).

Every django-celery-beat measurement is a subprocess of its own venv (built here with uv:
django-celery-beat 2.9, Django 5.2, celery/kombu/redis-py pinned to this venv's versions,
psycopg) on a fresh database made from a migrated template. No timing is asserted: a case
fails only when it crashes or its dispatch counts are wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import run as bench_run
from benchmarks.django_peer import report
from benchmarks.django_peer.postgres import PostgresCluster

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
DJWORKER = HERE / "djworker.py"
DJ_BEAT_APP = HERE / "dj_beat_app.py"
DEFAULT_VENV = BENCH / ".cache" / "django-celery-beat-2.9"
RESULTS = BENCH / "results-django.json"
PEER = ("django-celery-beat==2.9.*", "Django==5.2.*", "psycopg[binary]==3.*")
ALL_CASES = ("b1", "b2", "b3", "b5", "b6")
DATABASES = ("sqlite", "postgresql")
SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
WORKER_TIMEOUT = 1200.0

log = bench_run.log


def plan(args: argparse.Namespace) -> dict[str, Any]:
    if args.smoke:
        return {
            "b1_sizes": [200],
            "reps": 1,
            "idle_reps": 2,
            "cap": 30.0,
            "b2_sizes": [50],
            "b2_reps": 1,
            "b3_n": 200,
            "b3_lead": 3.0,
            "b6_n": 10,
            "b6_every": 1.0,
            "b6_window": 3.0,
        }
    return {
        "b1_sizes": [1_000, 10_000, 100_000],
        "reps": args.reps or 5,
        "idle_reps": 10,
        # A busy cycle longer than this is cut, and its per-entry cost is what it dispatched.
        "cap": args.cap,
        "b2_sizes": [1_000, 10_000] if args.b2_10k else [1_000],
        "b2_reps": args.reps or 3,
        "b3_n": 10_000,
        "b3_lead": 8.0,
        "b6_n": 100,
        "b6_every": 2.0,
        "b6_window": 10.0,
    }


# ----------------------------------------------------------------------------- the peer's venv


def ensure_venv(venv: Path) -> Path:
    """The interpreter of a venv holding django-celery-beat 2.9 on Django 5.2, made with uv if
    missing; Celery, kombu, redis-py and hiredis pinned to this venv's versions, so Celery's
    publish (the floor) is the same code on every side."""
    python = venv / "bin" / "python"
    shared = ("celery", "kombu", "redis", "hiredis")
    pins = [f"{d}=={importlib.metadata.version(d)}" for d in shared]
    version = bench_run._version_in(python, "django-celery-beat") if python.exists() else None
    if (
        version is not None
        and version.startswith("2.9.")
        and all(bench_run._version_in(python, d) == importlib.metadata.version(d) for d in shared)
    ):
        return python
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to build django-celery-beat's venv")
    log(f"building the django-celery-beat 2.9 venv in {venv}")
    pyver = ".".join(platform.python_version_tuple()[:2])
    subprocess.run([uv, "venv", "--quiet", "--clear", "-p", pyver, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), *PEER, *pins], check=True
    )
    return python


def run_dj(python: Path, op: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one djworker op; return its JSON result, raise with its stderr."""
    with tempfile.TemporaryDirectory(prefix="redbeat-bench-dj-") as cwd:
        try:
            done = subprocess.run(
                [str(python), str(DJWORKER), op, json.dumps(params)],
                capture_output=True,
                text=True,
                timeout=WORKER_TIMEOUT,
                cwd=cwd,
                env=bench_run._child_env(),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise bench_run.WorkerError(f"django {op} timed out after {WORKER_TIMEOUT}s") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-30:])
        raise bench_run.WorkerError(f"django {op} exited {done.returncode}:\n{tail}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- databases


class SqliteDatabases:
    """Fresh SQLite files copied from one migrated template, in a temporary folder."""

    engine = "sqlite"

    def __init__(self, python: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="redbeat-bench-sqlite-"))
        self.template = self.dir / "template.sqlite3"
        run_dj(python, "migrate", {"db": {"engine": "sqlite", "path": str(self.template)}})
        self._made = 0

    def fresh(self) -> dict[str, Any]:
        self._made += 1
        path = self.dir / f"bench-{self._made}.sqlite3"
        shutil.copy(self.template, path)
        return {"engine": "sqlite", "path": str(path)}

    def drop(self, db: dict[str, Any]) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(db["path"] + suffix)

    def stop(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresDatabases:
    """Fresh databases from one migrated template on a cluster of our own."""

    engine = "postgresql"

    def __init__(self, python: Path) -> None:
        self.cluster = PostgresCluster().start()
        try:
            template = self.cluster.create("bench_template")
            run_dj(python, "migrate", {"db": template})
        except BaseException:
            self.cluster.stop()
            raise

    def fresh(self) -> dict[str, Any]:
        return self.cluster.fresh("bench_template")

    def drop(self, db: dict[str, Any]) -> None:
        self.cluster.drop(db)

    def stop(self) -> None:
        self.cluster.stop()


Databases = SqliteDatabases | PostgresDatabases


@contextlib.contextmanager
def fresh_db(dbs: Databases) -> Iterator[dict[str, Any]]:
    db = dbs.fresh()
    try:
        yield db
    finally:
        dbs.drop(db)


# ----------------------------------------------------------------------------- cases


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


class Runner:
    def __init__(self, args: argparse.Namespace, python: Path) -> None:
        self.args = args
        self.sizes = plan(args)
        self.python = python
        self.every = bench_run.EVERY

    # -- B1 (and B5 from the same stores): tick cost and memory at N stored
    def case_b1(self, dbs: Databases) -> dict[str, Any]:
        s = self.sizes
        out: dict[str, Any] = {}
        for n in s["b1_sizes"]:
            due = max(1, n // 100)
            reps, idle_reps = s["reps"], s["idle_reps"]
            if n >= 100_000:  # seconds per due entry: one slice, cut at the cap
                reps, idle_reps = 1, min(idle_reps, 5)
            log(f"django b1 N={n} due={due} x{reps} on {dbs.engine}")
            slices = [[1, reps * due, 1.5]]
            with fresh_db(dbs) as db:
                run_dj(
                    self.python, "populate", {"db": db, "n": n, "every": self.every, "due": slices}
                )
                raw = run_dj(
                    self.python,
                    "ticks",
                    {"db": db, "n": n, "due": due, "reps": reps, "cap": s["cap"]},
                )
            # B5 and the idle ticks: a busy cycle of at most 100 entries first (at N=100,000
            # one of 1,000 takes minutes), then idle ticks, then the RSS.
            mem_due = min(due, 100)
            with fresh_db(dbs) as db:
                run_dj(
                    self.python,
                    "populate",
                    {"db": db, "n": n, "every": self.every, "due": [[1, mem_due, 1.5]]},
                )
                memory = run_dj(
                    self.python, "memory", {"db": db, "due": mem_due, "idle_reps": idle_reps}
                )
            busy = raw["busy"]
            per_entry = [r["seconds"] / r["published"] for r in busy if r["published"]]
            out[str(n)] = {
                "due": due,
                "busy": busy,
                "busy_complete": all(r["complete"] for r in busy),
                "busy_seconds_per_entry": statistics.median(per_entry) if per_entry else None,
                "busy_queries_per_entry": statistics.median(
                    [r["queries"] / r["published"] for r in busy if r["published"]]
                )
                if per_entry
                else None,
                "idle": memory["idle"],
                "idle_seconds": _median(memory["idle"], "seconds"),
                "idle_queries": _median(memory["idle"], "queries"),
                "load": raw["load"],
                "rss_kib": raw["rss_kib"],
                "memory": memory,
                "stored": raw["stored"],
                "side_info": raw["side_info"],
            }
        return out

    # -- B2: start-up with S statics
    def case_b2(self, dbs: Databases) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for size in self.sizes["b2_sizes"]:
            for mode in ("cold", "warm"):
                log(f"django b2 S={size} {mode} on {dbs.engine}")
                params = {"s": size, "reps": self.sizes["b2_reps"], "warm": mode == "warm"}
                failed = None
                try:
                    with fresh_db(dbs) as db:
                        raw = run_dj(self.python, "startup", {"db": db, **params})
                except bench_run.WorkerError as exc:
                    # SQLite: the prefetch of 1,000 distinct IntervalSchedules is one expression
                    # deeper than SQLite allows; django-celery-beat cannot start with them.
                    if "Expression tree is too large" not in str(exc):
                        raise
                    failed = str(exc).splitlines()[-1]
                    log(f"django b2 S={size} {mode} failed ({failed}): 500 distinct intervals")
                    params["periods"] = 500
                    with fresh_db(dbs) as db:
                        raw = run_dj(self.python, "startup", {"db": db, **params})
                for rep in raw["reps"]:
                    if rep["stored"] != size:
                        raise bench_run.WorkerError(f"django b2: {rep['stored']} of {size} stored")
                out[f"{size}/{mode}"] = {
                    "failed_with_the_same_statics": failed,
                    "distinct_intervals": min(size, params.get("periods", 3600)),
                    "seconds": _median(raw["reps"], "seconds"),
                    "queries": _median(raw["reps"], "queries"),
                    "runs": raw["reps"],
                }
        return out

    # -- B3: a burst of n entries due at the same second
    def case_b3(self, dbs: Databases) -> dict[str, Any]:
        n = self.sizes["b3_n"]
        log(f"django b3 burst n={n} on {dbs.engine}")
        with fresh_db(dbs) as db:
            run_dj(self.python, "populate", {"db": db, "n": n, "every": self.every})
            return run_dj(
                self.python,
                "burst",
                {"db": db, "n": n, "every": self.every, "lead": self.sizes["b3_lead"]},
            )

    # -- B6: two real beats on one store: duplicates
    def case_b6(self, dbs: Databases) -> dict[str, Any]:
        s = self.sizes
        log(f"django b6 two beats, {s['b6_n']} entries every {s['b6_every']:g}s on {dbs.engine}")
        with fresh_db(dbs) as db, tempfile.TemporaryDirectory() as tmp:
            params = {
                "db": db,
                "root": str(ROOT),
                "n": s["b6_n"],
                "every": s["b6_every"],
                "relative": False,
            }
            return two_beats(lambda label: DjangoBeat(self.python, Path(tmp), params, label), s)


def two_beats(start: Any, s: dict[str, Any]) -> dict[str, Any]:
    """Start two beats on one store, wait until one publishes, then count over ``b6_window``
    seconds how many runs were published by both (a run: an entry's publishes less than half
    an interval apart)."""
    a = b = None
    try:
        a, b = start("a"), start("b")
        deadline = time.monotonic() + 120
        while not (a.publishes() or b.publishes()):
            a.check_alive()
            b.check_alive()
            if time.monotonic() > deadline:
                raise bench_run.WorkerError(f"no beat published in 120s:\n{a.tail()}\n{b.tail()}")
            time.sleep(0.05)
        begin = time.time() + s["b6_every"]  # both beats up and settled
        time.sleep(s["b6_every"] + s["b6_window"] + 0.5)
        a.check_alive()
        b.check_alive()
    finally:
        for beat in (a, b):
            if beat is not None:
                beat.stop()
    end = begin + s["b6_window"]
    return count_duplicates(a.publishes(), b.publishes(), begin, end, s["b6_every"], s["b6_n"])


def count_duplicates(
    pa: list[tuple[float, int]],
    pb: list[tuple[float, int]],
    begin: float,
    end: float,
    every: float,
    n: int,
) -> dict[str, Any]:
    """Over ``[begin, end)``: how many entries both beats dispatched, and the publishes over
    the runs one beat alone would have made (``n`` entries every ``every`` seconds); the two
    beats' phases differ by their start-up, so runs are counted, not matched."""
    seen: dict[str, set[int]] = {"a": set(), "b": set()}
    counts = {"a": 0, "b": 0}
    for label, publishes in (("a", pa), ("b", pb)):
        for t, i in publishes:
            if begin <= t < end:
                seen[label].add(i)
                counts[label] += 1
    expected = n * (end - begin) / every
    total = counts["a"] + counts["b"]
    return {
        "entries": n,
        "window": end - begin,
        "every": every,
        "expected_runs": expected,
        "publishes": counts,
        "entries_dispatched_by_both": len(seen["a"] & seen["b"]),
        "entries_seen": len(seen["a"] | seen["b"]),
        "publishes_per_run": total / expected if expected else None,
        "duplicates": max(0, round(total - expected)),
    }


class DjangoBeat(bench_run.BeatProcess):
    """A real ``celery beat -S django_celery_beat.schedulers:DatabaseScheduler``."""

    def __init__(self, python: Path, workdir: Path, params: dict[str, Any], label: str) -> None:
        app_file = workdir / "bench_dj_beat_app.py"
        if not app_file.exists():
            shutil.copy(DJ_BEAT_APP, app_file)
        self.workdir = workdir
        self.stderr_path = workdir / f"beat-{label}.err"
        env = {
            **bench_run._child_env(),
            "BENCH_BEAT": json.dumps({**params, "log_dir": str(workdir)}),
        }
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    str(python),
                    "-m",
                    "celery",
                    "-A",
                    "bench_dj_beat_app",
                    "beat",
                    "-S",
                    SCHEDULER,
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


def ours_b6(python: str, s: dict[str, Any]) -> dict[str, Any]:
    """B6 duplicates for a Redis side: the same two beats on one Valkey (``beat_app.py``)."""
    with bench_run.fresh_server() as server, tempfile.TemporaryDirectory() as tmp:
        params = {"url": server.url, "n": s["b6_n"], "every": s["b6_every"], "relative": False}
        return two_beats(lambda label: bench_run.BeatProcess(python, Path(tmp), params, label), s)


# ----------------------------------------------------------------------------- the Redis sides


def redis_sides(
    args: argparse.Namespace, sizes: dict[str, Any], cases: list[str]
) -> dict[str, Any]:
    """RedBeat (and celery-redbeat) through ``benchmarks/run.py``'s own cases, same sizes."""
    pythons = {"ours": sys.executable}
    if args.with_theirs:
        pythons["theirs"] = str(bench_run.ensure_theirs(Path(bench_run.DEFAULT_THEIRS_VENV)))
    ns = bench_run.parse_args(["--smoke"] if args.smoke else ["--reps", str(sizes["reps"])])
    runner = bench_run.Runner(ns, pythons)
    runner.sizes.update(
        b1_sizes=sizes["b1_sizes"],
        b1_big=[],
        b2_sizes=sizes["b2_sizes"],
        b2_reps=sizes["b2_reps"],
        b3_n=sizes["b3_n"],
    )
    out: dict[str, Any] = {"sides": sorted(pythons)}
    steps = {"b1": runner.case_b1, "b2": runner.case_b2, "b3": runner.case_b3}
    for case in cases:
        if case in steps:
            out[case] = steps[case]()
    if "b6" in cases:
        out["b6"] = {}
        for side, python in pythons.items():
            log(f"b6 two beats, {sizes['b6_n']} entries every {sizes['b6_every']:g}s, {side}")
            out["b6"][side] = ours_b6(python, sizes)
    return out


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.django_peer", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, SQLite only, < 1 min")
    parser.add_argument("--db", default=",".join(DATABASES), help="sqlite,postgresql")
    parser.add_argument("--cases", default=",".join(ALL_CASES), help=",".join(ALL_CASES))
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 5, b2 3)")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per busy cycle (b1)")
    parser.add_argument("--b2-10k", action="store_true", help="b2 with 10,000 statics as well")
    parser.add_argument("--with-ours", action="store_true", help="measure RedBeat in this run")
    parser.add_argument(
        "--with-theirs", action="store_true", help="measure celery-redbeat in this run"
    )
    parser.add_argument("--venv", default=str(DEFAULT_VENV), help="django-celery-beat's venv")
    parser.add_argument("--output", help="results JSON (default benchmarks/results-django.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM ends the run through the finally blocks: databases and beats are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    engines = ["sqlite"] if args.smoke else [d.strip() for d in args.db.split(",") if d.strip()]
    bad = sorted(set(cases) - set(ALL_CASES)) + sorted(set(engines) - set(DATABASES))
    if bad:
        raise SystemExit(f"unknown {bad}; cases: {', '.join(ALL_CASES)}; --db: sqlite,postgresql")
    if args.output:
        output = Path(args.output)
    elif args.smoke:
        output = Path(tempfile.mkdtemp(prefix="redbeat-bench-dj-smoke-")) / "results-django.json"
    else:
        output = RESULTS
    started = time.monotonic()
    python = ensure_venv(Path(args.venv))
    runner = Runner(args, python)
    errors: list[str] = []
    results: dict[str, Any] = {}
    steps = {"b1": runner.case_b1, "b2": runner.case_b2, "b3": runner.case_b3, "b6": runner.case_b6}
    for engine in engines:
        dbs: Databases = (
            SqliteDatabases(python) if engine == "sqlite" else PostgresDatabases(python)
        )
        try:
            for case in cases:
                if case == "b5" and "b1" in cases:
                    continue  # B5 is measured on B1's stores
                name = "b1" if case == "b5" else case
                try:
                    results.setdefault(engine, {})[name] = steps[name](dbs)
                except Exception:
                    errors.append(f"{engine} {case}: {traceback.format_exc()}")
                    log(f"django {engine} {case} FAILED:\n{traceback.format_exc()}")
        finally:
            dbs.stop()
    redis: dict[str, Any] | None = None
    if args.with_ours or args.with_theirs:
        try:
            redis = redis_sides(args, runner.sizes, cases)
        except Exception:
            errors.append(f"redis sides: {traceback.format_exc()}")
            log(f"redis sides FAILED:\n{traceback.format_exc()}")
    data = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "smoke": args.smoke,
            "sizes": runner.sizes,
            "cases": cases,
            "databases": engines,
            "wall_seconds": time.monotonic() - started,
            "errors": errors,
            "loads": os.getloadavg(),
            "cpu_count": os.cpu_count(),
        },
        "django": results,
        "redis": redis,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(data, indent=1, sort_keys=True))
    fragment = output.with_suffix(".md")
    fragment.write_text(report.section(data, report.redis_results(data)) + "\n")
    log(f"wrote {output} and {fragment} in {data['meta']['wall_seconds']:.0f}s")
    if errors:
        log(f"{len(errors)} case(s) failed")
        return 1
    return 0
