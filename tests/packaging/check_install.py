"""Run inside a clean venv where ``redbeat`` was installed from the built wheels only.

Checks what a user gets from ``pip install redbeat``: the import names, the celery scheduler
alias, the backend entry point, the console script, lockstep versions and the extras. Exits
non-zero with a message on the first failure. (Not collected by pytest: it needs that venv.)
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution, distributions, entry_points, version
from pathlib import Path

VERSION = "0.1.0"


def check(condition: bool, message: str) -> None:
    if not condition:
        print(f"packaging check failed: {message}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {message}")


def main() -> None:
    dist_dir = Path(sys.argv[1])
    wheels = sorted(p.name for p in dist_dir.glob("*.whl"))
    members = (
        "redbeat",
        "redbeat_core",
        "redbeat_redis",
        "redbeat_sentinel",
        "redbeat_cluster",
        "redbeat_prometheus",
    )
    for name in members:
        check(any(w.startswith(f"{name}-{VERSION}-") for w in wheels), f"{name} wheel built")
    for name in (m.replace("_", "-") for m in members):  # [all] pulls sentinel and cluster
        check(version(name) == VERSION, f"{name} installed at {VERSION} (lockstep)")
    installed = {d.metadata["Name"].lower() for d in distributions()}
    check(
        "celery-redbeat" not in installed, "no celery-redbeat (the PyPI 'redbeat' shim) pulled in"
    )

    import redbeat
    from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
    from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder, to_timestamp
    from redbeat.schedulers import RedBeatConfig, RetryingConnection, ensure_conf, get_redis
    from redbeat.schedules import rrule

    check(redbeat.__version__ == VERSION, "redbeat.__version__")
    del RedBeatSchedulerEntry, RedBeatJSONDecoder, RedBeatJSONEncoder, to_timestamp
    del RedBeatConfig, RetryingConnection, ensure_conf, get_redis, rrule

    aliases = {ep.name: ep for ep in entry_points(group="celery.beat_schedulers")}
    check("redbeat" in aliases, "celery.beat_schedulers alias 'redbeat'")
    check(aliases["redbeat"].load() is RedBeatScheduler, "-S redbeat is RedBeatScheduler")
    from celery.utils.imports import symbol_by_name

    check(
        symbol_by_name("redbeat_core.scheduler:RedBeatScheduler") is RedBeatScheduler,
        "-S redbeat_core.scheduler:RedBeatScheduler",
    )
    backends = {ep.name for ep in entry_points(group="redbeat")}
    check("redis" in backends, "redbeat entry point 'redis' (the Redis backend)")

    extras = set(distribution("redbeat").metadata.get_all("Provides-Extra") or [])
    wanted = {"redis", "sentinel", "cluster", "prometheus", "all", "embedded", "web"}
    check(wanted <= extras, f"extras {sorted(extras)}")

    cli = Path(sys.executable).with_name("redbeat")
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=False)
    check(out.returncode == 0 and VERSION in out.stdout, f"'redbeat --version' -> {out.stdout!r}")
    check_dashboard_files(dist_dir)


def check_dashboard_files(dist_dir: Path) -> None:
    """The dashboard's templates and static files (htmx and its licence) are in the wheel and
    installed, and the installed app renders a page from them (``redbeat[web]``)."""
    import zipfile

    (wheel,) = dist_dir.glob(f"redbeat-{VERSION}-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "templates/base.html", "templates/list.html", "templates/entry.html",
        "templates/_entry_live.html", "templates/_actions.html", "templates/_edit.html",
        "static/htmx.min.js", "static/htmx.LICENSE", "static/dashboard.css",
        "static/dashboard.js",
    ):  # fmt: skip
        check(f"redbeat/web/{name}" in inside, f"redbeat/web/{name} in the wheel")
    from celery import Celery
    from starlette.testclient import TestClient

    from redbeat.web import create_app

    app = Celery("packaging", set_as_current=False)
    app.conf.redbeat_url = "redis://127.0.0.1:1/0"  # never connected: only static files
    with TestClient(create_app(app)) as client:
        script = client.get("/static/htmx.min.js")
        check(script.status_code == 200 and b"htmx" in script.content, "htmx served")
        check(client.get("/login").status_code == 200, "a page rendered from the templates")


if __name__ == "__main__":
    main()
