"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against
a real ``redbeat web`` process, two real ``celery beat`` processes (a leader and a standby), a
real ``celery worker`` and a real Valkey server.

Everything is started once for the module (starting beats and a worker is the slow part) and
stopped by pid at its end; each scenario uses entries of its own. The tasks push a record on
a Redis list, which the tests poll with deadlines; what the page shows is waited for with
Playwright's own polling ``expect``. Screenshots of the main views are saved in the test's
temporary folder; with ``REDBEAT_UPDATE_SCREENSHOTS=1`` they replace the ones the docs use
(docs/img/dashboard-*.png), which a plain run leaves untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("starlette", reason="the web extra: uv sync --extra web")
    pytest.importorskip("playwright", reason="playwright (the dev group)")

from redbeat_test_support import WebProcess, chromium, running_web, stop_process

from redbeat_core.catalog import Schedule

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMAGES = ROOT / "docs" / "img"
#: The screenshots the docs show (docs/dashboard.md), saved by the scenarios below.
SCREENSHOTS = ("dashboard-list.png", "dashboard-entry.png", "dashboard-cluster.png")
UPDATE_ENV = "REDBEAT_UPDATE_SCREENSHOTS"
START_TIMEOUT = 45.0
RUN_TIMEOUT = 20.0
#: Playwright's deadline for what a page must come to show (its expect polls until then).
SHOW_MS = 20_000
RUNS_KEY = "web:runs"
READY_KEY = "web:ready"

APP_MODULE = '''
"""Celery app of the dashboard's browser tests (written by the test into its folder)."""
import json
import os
import time

import redis
from celery import Celery
from celery.signals import worker_ready

BASE = os.environ["REDBEAT_WEB_TEST_SERVER"]
app = Celery("webtest")
app.conf.update(
    broker_url=BASE + "/1",
    redbeat_redis_url=BASE + "/0",
    beat_max_loop_interval=1,
    redbeat_lock_timeout=3,
    broker_connection_retry_on_startup=True,
    timezone="Europe/Paris",
)
_client = None


def client():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(BASE + "/0")
    return _client


@app.task(name="web.record", bind=True)
def record(self, label):
    client().rpush("web:runs", json.dumps({"label": label, "at": time.time()}))


@worker_ready.connect
def _ready(**_):
    client().rpush("web:ready", "worker")
'''


@dataclass
class Cluster:
    """The processes of the module, and what the tests use to look at them."""

    workdir: Path
    env: dict[str, str]
    url: str
    client: Any
    schedule: Schedule
    web: WebProcess | None = None
    beats: list[subprocess.Popen[bytes]] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def celery(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        with log:
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "webapp", *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=self.env,
            )  # fmt: skip

    def beat(self, index: int) -> subprocess.Popen[bytes]:
        popen = self.celery(
            f"beat-{index}", "beat", "-S", "redbeat.RedBeatScheduler", "--loglevel=INFO",
            f"--schedule={self.workdir / f'celerybeat-schedule-{index}'}",
        )  # fmt: skip
        self.beats.append(popen)
        return popen

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}:\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted(self.workdir.glob("*.log"))
        )

    def runs_of(self, label: str) -> list[float]:
        found = [json.loads(raw) for raw in self.client.lrange(RUNS_KEY, 0, -1)]
        return [run["at"] for run in found if run["label"] == label]

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = RUN_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout:g} s\n{self.logs()}", pytrace=False)
            time.sleep(0.05)

    def add(self, name: str, every: float, **kwargs: Any) -> None:
        self.schedule.add(name, "web.record", every, args=[name], **kwargs)

    def leader(self) -> str | None:
        status = self.schedule.lock_status()
        return status.holder.identity if status.held and status.holder else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    import redis
    from celery import Celery

    from redbeat_redis.testing import servers

    kind = next((k for k in ("valkey", "redis") if k in servers.find_server_binaries()), None)
    if kind is None:
        pytest.fail("no valkey-server or redis-server found", pytrace=False)
    server = servers.start_server(kind)
    workdir = tmp_path_factory.mktemp("dashboard")
    (workdir / "webapp.py").write_text(APP_MODULE)
    base = server.url.rsplit("/", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    env.update(
        REDBEAT_WEB_TEST_SERVER=base,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")])),
    )
    control = Celery("webtest-control", set_as_current=False)
    control.conf.update(redbeat_redis_url=base + "/0", timezone="Europe/Paris")
    client = redis.Redis.from_url(base + "/0", decode_responses=True)
    found = Cluster(workdir, env, base + "/0", client, Schedule(control))
    try:
        found.others.append(
            found.celery(
                "worker",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname=web-worker@%h",
            )
        )
        found.beat(0)
        found.wait(
            lambda: "worker" in client.lrange(READY_KEY, 0, -1) and found.leader() is not None,
            "worker ready and a beat leading",
            START_TIMEOUT,
        )
        found.beat(1)  # the standby
        found.wait(lambda: len(found.schedule.lock_status().standbys) >= 1, "the standby seen", 20)
        with running_web(
            workdir, ["redbeat", "-A", "webapp"], env, extra=("--refresh", "0.5")
        ) as web:
            found.web = web
            yield found
    finally:
        for popen in [*found.beats, *found.others]:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        for popen in [*found.beats, *found.others]:
            stop_process(popen)
        client.close()
        runtime = getattr(control, "redbeat_runtime", None)
        if runtime is not None:
            runtime.close()
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, cluster: Cluster) -> Iterator[Any]:
    context = browser.new_context(
        base_url=cluster.web.base if cluster.web else "", viewport={"width": 1280, "height": 860}
    )
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, errors  # no script error on any page


def shoot(tab: Any, name: str, tmp_path: Path, height: int | None = None) -> None:
    """Save a screenshot (``height``: of that much of the page); with
    REDBEAT_UPDATE_SCREENSHOTS=1 also as the docs' copy."""
    if height is not None:
        tab.set_viewport_size({"width": 1280, "height": height})
    saved = tmp_path / name
    tab.screenshot(path=str(saved), full_page=False)
    assert saved.stat().st_size > 5_000  # a real picture, not an empty page
    if os.environ.get(UPDATE_ENV) == "1":
        shutil.copyfile(saved, DOCS_IMAGES / name)


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=SHOW_MS)
    return playwright_expect


# ----------------------------------------------------------------------------- scenarios


def test_the_list_shows_what_the_beat_runs(page: Any, cluster: Cluster, tmp_path: Path) -> None:
    cluster.add("list-every-second", 1)
    cluster.add("list-nightly-report", 86400)
    cluster.schedule.add(
        "list-crontab", "web.record", __import__("celery").schedules.crontab(minute="*/15")
    )
    cluster.add("list-paused", 60)
    cluster.schedule.pause("list-paused", "the vendor's API is down")
    cluster.add("list-disabled", 60, enabled=False)
    cluster.wait(lambda: len(cluster.runs_of("list-every-second")) >= 2, "runs of the entry")

    page.goto("/?match=list-")
    row = page.locator("tr[data-name='list-every-second']")
    expect()(row).to_contain_text("every second")
    expect()(row).to_contain_text("scheduled")
    # The live refresh brings the run count up without a reload.
    expect()(row.locator("td.count")).not_to_have_text("0", timeout=SHOW_MS)
    expect()(page.locator("tr[data-name='list-paused']")).to_contain_text(
        "the vendor's API is down"
    )
    expect()(page.locator("tr[data-name='list-disabled']")).to_contain_text("disabled")
    expect()(page.locator("#cluster-summary")).to_contain_text("Leader:")
    first = int(row.locator("td.count").inner_text())
    expect()(row.locator("td.count")).not_to_have_text(str(first), timeout=SHOW_MS)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    page.select_option("select[name=state]", "paused")
    page.click("form.filters button[type=submit]")
    expect()(page.locator("table.entries tbody tr")).to_have_count(1)
    page.goto("/?match=list-")
    expect()(page.locator("tr[data-name='list-every-second'] td.count")).not_to_have_text("0")
    shoot(page, "dashboard-list.png", tmp_path, height=640)


def test_pause_with_a_reason_stops_dispatches_and_shows_the_reason(
    page: Any, cluster: Cluster
) -> None:
    cluster.add("pause-me", 1)
    cluster.add("pause-witness", 1)
    cluster.wait(lambda: len(cluster.runs_of("pause-me")) >= 1, "pause-me runs")

    page.goto("/entries/pause-me")
    page.fill("#pause-reason", "disk full on the reports host")
    page.click("#pause")
    expect()(page.locator("#flash")).to_have_text("paused pause-me")
    expect()(page.locator("#entry-state")).to_have_text("paused")
    expect()(page.locator("#entry-reason")).to_have_text("disk full on the reports host")
    assert cluster.schedule.get("pause-me").reason == "disk full on the reports host"

    # The history holds no dispatch after the pause; the witness runs on meanwhile (three
    # more of its runs: three seconds in which pause-me would have run three times).
    paused_at = time.time()
    witness = len(cluster.runs_of("pause-witness"))
    cluster.wait(lambda: len(cluster.runs_of("pause-witness")) >= witness + 3, "witness runs")
    late = [at for at in cluster.runs_of("pause-me") if at > paused_at + 0.5]
    assert late == []
    dispatched = [r.at for r in cluster.schedule.history("pause-me", 50) if r.outcome == "sent"]
    assert all(at <= paused_at for at in dispatched)

    page.click("#resume")
    expect()(page.locator("#entry-state")).to_have_text("scheduled")
    resumed = time.time()
    cluster.wait(
        lambda: any(at > resumed for at in cluster.runs_of("pause-me")), "runs after resume"
    )


def test_run_now_shows_a_manual_run_in_the_history(
    page: Any, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.add("run-now-monthly", 30 * 86400)
    page.goto("/entries/run-now-monthly")
    expect()(page.locator("#entry-state")).to_have_text("scheduled")
    asked = time.time()
    page.click("#run-now")
    expect()(page.locator("#flash")).to_contain_text("asked the leading beat to run")
    # The live refresh shows the run without a reload, within seconds.
    manual = page.locator("#entry-live table.history .badge.manual")
    expect()(manual).to_have_count(1, timeout=SHOW_MS)
    expect()(page.locator("#entry-live table.history")).to_contain_text("sent")
    cluster.wait(
        lambda: any(at >= asked for at in cluster.runs_of("run-now-monthly")), "the task ran"
    )
    (record,) = [r for r in cluster.schedule.history("run-now-monthly", 5) if r.manual]
    assert record.beat is not None
    assert record.epoch >= 1
    history = page.locator("#entry-live table.history").inner_text()
    assert f"{record.beat} #{record.epoch}" in history
    expect()(page.locator("svg.timeline rect.bar")).to_have_count(1)
    shoot(page, "dashboard-entry.png", tmp_path)


def test_an_edit_with_a_bad_crontab_shows_the_field_error_and_changes_nothing(
    page: Any, cluster: Cluster
) -> None:
    cluster.add("edit-me", 3600)
    before = cluster.schedule.get("edit-me")
    page.goto("/entries/edit-me")
    page.select_option("select[name=kind]", "cron")
    page.fill("input[name=cron]", "61 * * * *")
    page.click("#save")
    error = page.locator("#error-cron")
    expect()(error).to_contain_text("61 > 59")
    expect()(page.locator("input[name=cron]")).to_have_value("61 * * * *")
    assert cluster.schedule.get("edit-me") == before
    expect()(page.locator("#entry-schedule")).to_have_text("every hour")

    page.fill("input[name=cron]", "*/10 * * * *")
    page.fill("input[name=args]", '["edited"]')
    page.click("#save")
    expect()(page.locator("#edit-saved")).to_have_text("changed edit-me")
    expect()(page.locator("#error-cron")).to_have_count(0)
    expect()(page.locator("#entry-schedule")).to_have_text("crontab */10 * * * *")
    expect()(page.locator("#entry-args")).to_have_text('["edited"]')
    assert list(cluster.schedule.get("edit-me").args) == ["edited"]


def test_a_quarantined_entry_can_be_restored(page: Any, cluster: Cluster) -> None:
    cluster.add("quarantined-one", 1)
    cluster.wait(lambda: len(cluster.runs_of("quarantined-one")) >= 1, "it ran")
    # Set aside as the beat does: out of the schedule, in the quarantine with its reason.
    key = "redbeat:quarantined-one"
    cluster.client.zrem("redbeat::schedule", key)
    cluster.client.hset("redbeat::quarantine", key, "task web.record refused by a plugin")
    page.goto("/?state=quarantined")
    expect()(page.locator("tr[data-name='quarantined-one']")).to_contain_text(
        "task web.record refused by a plugin"
    )
    page.click("tr[data-name='quarantined-one'] a")
    expect()(page.locator("#entry-state")).to_have_text("quarantined")
    stopped = len(cluster.runs_of("quarantined-one"))
    page.click("#restore")
    expect()(page.locator("#flash")).to_have_text("restored quarantined-one")
    expect()(page.locator("#entry-state")).to_have_text("scheduled")
    assert cluster.schedule.quarantine() == {}
    cluster.wait(
        lambda: len(cluster.runs_of("quarantined-one")) > stopped, "it runs again once restored"
    )


def test_delete_asks_for_confirmation(page: Any, cluster: Cluster) -> None:
    cluster.add("delete-me", 3600)
    page.goto("/entries/delete-me")
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        if len(asked) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    page.on("dialog", answer)
    page.click("#delete")
    expect()(page.locator("#entry-state")).to_have_text("scheduled")
    assert "delete-me" in cluster.schedule.names()
    page.click("#delete")
    page.wait_for_url(re.compile(r"/$"))
    assert "Delete the entry delete-me?" in asked[0]
    assert "delete-me" not in cluster.schedule.names()


def test_the_leader_panel_changes_after_the_leader_is_killed(
    page: Any, cluster: Cluster, tmp_path: Path
) -> None:
    page.goto("/cluster")
    first = cluster.leader()
    assert first is not None
    expect()(page.locator("#leader")).to_have_text(first)
    expect()(page.locator(".standby")).to_have_count(1)
    shoot(page, "dashboard-cluster.png", tmp_path, height=420)
    pid = int(first.rsplit(":", 1)[1])
    (leader,) = [p for p in cluster.beats if p.pid == pid]
    leader.send_signal(signal.SIGKILL)
    leader.wait(timeout=10)
    # The standby takes over (the lease lapses within 3 s); the page follows by itself.
    cluster.wait(lambda: cluster.leader() not in (None, first), "the standby takes over")
    second = cluster.leader()
    assert second is not None
    expect()(page.locator("#leader")).to_have_text(second)
    expect()(page.locator(".standby")).to_have_count(0)


def test_the_docs_screenshots_are_committed() -> None:
    """The docs show these (regenerated with REDBEAT_UPDATE_SCREENSHOTS=1)."""
    page = (ROOT / "docs" / "dashboard.md").read_text(encoding="utf-8")
    for name in SCREENSHOTS:
        image = DOCS_IMAGES / name
        assert image.exists(), f"{image} is missing: run tests/web with {UPDATE_ENV}=1"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"img/{name}" in page
