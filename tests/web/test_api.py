"""The dashboard's JSON endpoints, pages and actions, in this process (Starlette's TestClient
drives the real ASGI app) against a real server.

What the browser tests (test_browser.py) show a person, these check at the HTTP level, with
the details a browser hides: status codes, the paging, errors by field, and that the storage
is unchanged when a change is refused.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("starlette", reason="the web extra: uv sync --extra web")

from celery.schedules import crontab, schedule
from redbeat_test_support import check_dashboard_on

from redbeat.web import Auth
from redbeat.web.listing import SCAN_BUDGET
from redbeat_core.catalog import Schedule


def csrf(client: Any) -> dict[str, str]:
    """The header a change needs (the cookie it goes with is now in the client)."""
    return {"X-CSRF-Token": client.get("/api/csrf").json()["token"]}


def fill(api: Schedule, count: int, task: str = "proj.task") -> None:
    """Store ``count`` entries ``job-0000``... (every 60 + i seconds), 1,000 per write."""
    from redbeat_core.entry import RedBeatSchedulerEntry
    from redbeat_core.runtime import get_runtime

    store = get_runtime(api.app).store
    entries = [
        RedBeatSchedulerEntry(f"job-{i:04d}", task, 60 + i, app=api.app).to_stored()
        for i in range(count)
    ]
    for start in range(0, count, 1000):
        store.save_many(entries[start : start + 1000], keep_meta=False)


# ----------------------------------------------------------------------------- the list


def test_the_list_is_paged_on_the_server(dashboard: Any) -> None:
    client = dashboard()
    fill(Schedule(client.celery_app), 120)
    page = client.get("/api/entries", params={"offset": 100, "limit": 50}).json()
    assert page["total"] == 120
    assert [e["name"] for e in page["entries"]] == [f"job-{i:04d}" for i in range(100, 120)]
    assert page["entries"][0]["next"]["relative"].startswith("in ")

    by_next = client.get("/api/entries", params={"sort": "next", "limit": 3}).json()
    assert [e["name"] for e in by_next["entries"]] == ["job-0000", "job-0001", "job-0002"]
    assert by_next["total"] == 120

    html = client.get("/", params={"offset": 50, "limit": 25}).text
    assert "51-75 of 120" in html
    assert html.count('class="state-scheduled"') == 25


def test_filters_by_name_task_and_state(dashboard: Any) -> None:
    client = dashboard()
    api = Schedule(client.celery_app)
    api.add("report-daily", "reports.daily", crontab(minute=0, hour=3))
    api.add("report-hourly", "reports.hourly", crontab(minute=0))
    api.add("cleanup", "maintenance.cleanup", schedule(timedelta(minutes=5)))
    api.pause("report-hourly", "the reports database is being migrated")
    api.disable("cleanup")

    def names(**params: Any) -> list[str]:
        response = client.get("/api/entries", params=params)
        assert response.status_code == 200, response.text
        return [e["name"] for e in response.json()["entries"]]

    assert names(match="report") == ["report-daily", "report-hourly"]
    assert names(task="maintenance.*") == ["cleanup"]
    assert names(state="paused") == ["report-hourly"]
    assert names(state="disabled") == ["cleanup"]
    assert names(state="scheduled") == ["report-daily"]
    assert names(state="paused", sort="next") == []
    paused = client.get("/api/entries", params={"state": "paused"}).json()["entries"][0]
    assert paused["reason"] == "the reports database is being migrated"

    bad = client.get("/api/entries", params={"state": "sleeping"})
    assert bad.status_code == 400
    assert "one of scheduled" in bad.json()["error"]


def test_a_filtered_scan_stops_at_its_budget_and_goes_on_from_its_cursor(dashboard: Any) -> None:
    client = dashboard()
    api = Schedule(client.celery_app)
    fill(api, SCAN_BUDGET + 10, task="proj.bulk")
    api.add("zz-special", "proj.special", 60)  # last in name order, past the budget

    first = client.get("/api/entries", params={"task": "proj.special"}).json()
    assert first["entries"] == []
    assert first["scanned"] == SCAN_BUDGET
    assert first["names_total"] == SCAN_BUDGET + 11
    second = client.get(
        "/api/entries", params={"task": "proj.special", "cursor": first["next_cursor"]}
    ).json()
    assert [e["name"] for e in second["entries"]] == ["zz-special"]
    assert second["next_cursor"] is None

    one = client.get("/api/entries", params={"task": "proj.bulk", "limit": 1}).json()
    after = client.get(
        "/api/entries", params={"task": "proj.bulk", "limit": 1, "cursor": one["next_cursor"]}
    ).json()
    assert [e["name"] for e in one["entries"] + after["entries"]] == ["job-0000", "job-0001"]


# ----------------------------------------------------------------------------- an entry


def test_an_entry_shows_its_definition_next_runs_and_history(dashboard: Any) -> None:
    client = dashboard(timezone="Europe/Paris")
    api = Schedule(client.celery_app)
    api.add("nightly", "proj.nightly", crontab(minute=30, hour=2), args=[1, "a"])
    data = client.get("/api/entries/nightly").json()
    assert data["task"] == "proj.nightly"
    assert data["args"] == [1, "a"]
    assert len(data["next_runs"]) == 10
    assert all(run["local"].endswith(("CET", "CEST")) for run in data["next_runs"])
    assert data["history"] == []
    assert data["keeps_history"] is True

    page = client.get("/entries/nightly").text
    assert "proj.nightly" in page
    assert page.count("<li>") >= 10
    assert client.get("/api/entries/nope").status_code == 404
    assert client.get("/entries/nope").status_code == 404


def test_names_with_slashes_and_reserved_characters_are_reachable(dashboard: Any) -> None:
    client = dashboard()
    api = Schedule(client.celery_app)
    api.add("team/a b?c#d%", "proj.task", 60)
    listed = client.get("/").text
    href = re.search(r'href="(/entries/team[^"]*)"', listed)
    assert href is not None
    assert client.get(href[1]).status_code == 200
    encoded = href[1].removeprefix("/entries/")
    assert client.get(f"/api/entries/{encoded}").json()["name"] == "team/a b?c#d%"
    response = client.post(f"/api/entries/{encoded}/disable", headers=csrf(client))
    assert response.status_code == 200, response.text
    assert api.get("team/a b?c#d%").state.value == "disabled"


# ----------------------------------------------------------------------------- actions


def test_actions_change_the_schedule(dashboard: Any) -> None:
    client = dashboard()
    api = Schedule(client.celery_app)
    api.add("job", "proj.task", 60)
    headers = csrf(client)

    def post(action: str, **data: Any) -> Any:
        return client.post(f"/api/entries/job/{action}", json=data, headers=headers)

    assert post("pause").status_code == 422  # no reason
    assert api.get("job").state.value == "scheduled"
    paused = post("pause", reason="waiting for the vendor", by="ops")
    assert paused.status_code == 200, paused.text
    assert paused.json()["entry"]["reason"] == "waiting for the vendor"
    assert api.get("job").paused_by == "ops"
    assert post("resume").json()["entry"]["state"] == "scheduled"
    assert post("resume").status_code == 422  # not paused
    assert post("disable").json()["entry"]["state"] == "disabled"
    assert post("enable").json()["entry"]["state"] == "scheduled"
    assert post("run").status_code == 200
    assert api.audit(10)[0].action == "run now"

    gone = client.delete("/api/entries/job", headers=headers)
    assert gone.status_code == 200
    assert api.names() == []
    assert client.delete("/api/entries/job", headers=headers).status_code == 404


def test_an_edit_with_a_bad_field_says_which_and_changes_nothing(dashboard: Any) -> None:
    client = dashboard()
    api = Schedule(client.celery_app)
    api.add("job", "proj.task", 60, args=[1])
    before = api.get("job")
    headers = csrf(client)
    for form, field in (
        ({"kind": "cron", "cron": "61 * * * *"}, "cron"),
        ({"kind": "cron", "cron": "* * *"}, "cron"),
        ({"kind": "every", "every": "soon"}, "every"),
        ({"kind": "at", "at": "tomorrow"}, "at"),
        ({"args": "{not json"}, "args"),
        ({"kwargs": "[1]"}, "kwargs"),
        ({"kind": "cron", "cron": "0 3 * * *", "args": "[1"}, "args"),
    ):
        response = client.patch("/api/entries/job", json=form, headers=headers)
        assert response.status_code == 422, form
        assert list(response.json()["errors"]) == [field], response.json()
    assert api.get("job") == before

    # htmx gets the form back with the message next to the field, and what was typed.
    fragment = client.patch(
        "/api/entries/job",
        data={"kind": "cron", "cron": "61 * * * *"},
        headers={**headers, "HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert re.search(r'id="error-cron">[^<]*61 &gt; 59', fragment.text)
    assert 'value="61 * * * *"' in fragment.text
    assert api.get("job") == before

    good = client.patch(
        "/api/entries/job",
        json={"kind": "cron", "cron": "*/5 * * * *", "args": [2], "task": "proj.other"},
        headers=headers,
    )
    assert good.status_code == 200, good.text
    after = api.get("job")
    assert (after.task, list(after.args), after.schedule_text) == (
        "proj.other",
        [2],
        "crontab */5 * * * *",
    )


def test_a_quarantined_entry_is_restored(dashboard: Any, client: Any) -> None:
    web = dashboard()
    api = Schedule(web.celery_app)
    api.add("job", "proj.task", 60)
    client.hset("redbeat::quarantine", "redbeat:job", "the beat could not read it")
    assert web.get("/api/entries", params={"state": "quarantined"}).json()["entries"][0][
        "reason"
    ] == ("the beat could not read it")
    restored = web.post("/api/entries/job/restore", headers=csrf(web))
    assert restored.status_code == 200, restored.text
    assert api.get("job").state.value == "scheduled"
    assert api.quarantine() == {}


# ----------------------------------------------------------------------------- the beats


def test_the_cluster_shows_the_leader_or_a_banner_when_none_ticks(make_app: Any) -> None:
    from starlette.testclient import TestClient

    from redbeat import RedBeatScheduler
    from redbeat.web import create_app

    app = make_app(redbeat_lock_timeout=10)
    with TestClient(create_app(app)) as web:
        idle = web.get("/api/cluster").json()["lock"]
        assert idle["held"] is False
        assert idle["stale"] is True
        assert "No beat has ticked within the lease (10 s)" in web.get("/fragments/banner").text
        leader = RedBeatScheduler(app=make_app(redbeat_lock_timeout=10))
        try:
            leader.tick()
            lock = web.get("/api/cluster").json()["lock"]
            assert lock["held"] is True
            assert lock["holder"].endswith(f":{os.getpid()}")
            assert lock["epoch"] >= 1
            assert 0 <= lock["last_tick_ago"] < 10
            assert web.get("/fragments/banner").text.strip() == ""
            assert lock["holder"] in web.get("/cluster").text
        finally:
            leader.close()


def test_without_a_lock_the_cluster_says_so(dashboard: Any) -> None:
    client = dashboard(redbeat_lock_key=None)
    data = client.get("/api/cluster").json()
    assert data["lock"] is None
    assert "without a lock" in data["why"]
    assert "without a lock" in client.get("/cluster").text


# ----------------------------------------------------------------------------- the API itself


def test_every_api_route_is_in_the_openapi_document(dashboard: Any) -> None:
    from starlette.routing import Route

    client = dashboard()
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {
        (route.path.replace("{name:path}", "{name}"), method)
        for route in client.app.routes
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in (route.methods or ()) - {"HEAD"}
    }
    assert documented == served


def test_the_sqlite_example_backend_serves_the_same_dashboard(tmp_path: Any) -> None:
    pytest.importorskip("redbeat_sqlite", reason="the SQLite example plugin is not installed")
    from celery import Celery

    app = Celery("sqlite-web", set_as_current=False)
    app.conf.redbeat_url = f"sqlite:///{tmp_path / 'schedule.db'}"
    try:
        check_dashboard_on(app)
    finally:
        runtime = getattr(app, "redbeat_runtime", None)
        if runtime is not None:
            runtime.close()


def test_read_only_refuses_changes_and_shows_no_buttons(dashboard: Any) -> None:
    client = dashboard(auth=Auth(read_only=True))
    api = Schedule(client.celery_app)
    api.add("job", "proj.task", 60)
    refused = client.post("/api/entries/job/pause", json={"reason": "x"}, headers=csrf(client))
    assert refused.status_code == 403
    assert "read-only" in refused.json()["error"]
    assert api.get("job").state.value == "scheduled"
    page = client.get("/entries/job").text
    assert "runs read-only" in page
    assert 'id="pause"' not in page


def test_htmx_is_served_from_the_package_with_its_licence(dashboard: Any) -> None:
    """No CDN: the page loads htmx from the dashboard itself (htmx.org 2.0.11 from npm, BSD
    Zero-Clause licence, kept beside it)."""
    from pathlib import Path

    import redbeat.web

    static = Path(redbeat.web.__file__).parent / "static"
    script = (static / "htmx.min.js").read_text()
    assert 'version:"2.0.11"' in script
    assert "Zero-Clause BSD" in (static / "htmx.LICENSE").read_text()
    client = dashboard()
    page = client.get("/").text
    assert '<script src="/static/htmx.min.js"></script>' in page
    assert not re.search(r'src="(https?:)?//', page)
    assert client.get("/static/htmx.min.js").text == script
