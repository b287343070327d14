"""The dashboard is safe by default: it listens on the loopback only unless authentication is
configured, refuses changes without the CSRF token, renders hostile names and arguments as
text, and never shows the storage password. Start-up, the reverse-proxy prefix and the
password checks run the real ``redbeat web`` process.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("starlette", reason="the web extra: uv sync --extra web")

from redbeat_test_support import running_web

from redbeat.web import Auth
from redbeat_core.catalog import Schedule

REDBEAT = str(Path(sys.executable).parent / "redbeat")
SECRET = "Zx9-web-storage-secret"
XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'-alert(3)-'",
    "</textarea><svg onload=alert(4)>",
    "{{7*7}}",
]


def csrf(client: Any) -> dict[str, str]:
    return {"X-CSRF-Token": client.get("/api/csrf").json()["token"]}


# ----------------------------------------------------------------------------- CSRF


def test_a_change_without_the_csrf_token_is_refused(dashboard: Any) -> None:
    client = dashboard()
    api = Schedule(client.celery_app)
    api.add("job", "proj.task", 60)
    token = csrf(client)["X-CSRF-Token"]
    attempts = [
        {},  # no header
        {"X-CSRF-Token": "0" * 64},  # a wrong one
    ]
    for headers in attempts:
        for method, path, body in (
            ("POST", "/api/entries/job/pause", {"reason": "x"}),
            ("POST", "/api/entries/job/disable", None),
            ("PATCH", "/api/entries/job", {"task": "evil"}),
            ("DELETE", "/api/entries/job", None),
        ):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (method, path, headers)
            assert "CSRF" in response.json()["error"]
    # The right token with another browser's cookie (a cross-site forgery with a stolen
    # token but not the victim's cookie) is refused too.
    client.cookies.clear()
    client.cookies.set("redbeat-csrf", "someone-elses-cookie")
    forged = client.post("/api/entries/job/disable", headers={"X-CSRF-Token": token})
    assert forged.status_code == 403
    assert api.get("job").state.value == "scheduled"
    assert api.get("job").task == "proj.task"


# ----------------------------------------------------------------------------- escaping


def test_hostile_names_tasks_and_arguments_render_as_text(dashboard: Any) -> None:
    client = dashboard()
    api = Schedule(client.celery_app)
    for index, payload in enumerate(XSS):
        api.add(payload, f"proj.{payload}", 60 + index, args=[payload], kwargs={payload: payload})
    api.pause(XSS[0], XSS[1])
    pages = ["/", "/fragments/rows", "/?state=paused", "/api/entries"]
    for payload in XSS:
        name = urllib.parse.quote(payload, safe="")
        pages += [f"/entries/{name}", f"/fragments/entry/{name}", f"/api/entries/{name}"]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        body = response.text
        for raw in ("<script>alert", "<img src=x", "<svg onload", "</textarea>"):
            assert raw not in body, (page, raw)
    listed = client.get("/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listed
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in listed
    assert "{{7*7}}" in listed  # shown, not evaluated
    # JSON carries the names unchanged once decoded.
    names = {e["name"] for e in client.get("/api/entries").json()["entries"]}
    assert names == set(XSS)


# ----------------------------------------------------------------------------- authentication


def test_a_token_is_required_when_configured(dashboard: Any) -> None:
    client = dashboard(auth=Auth(token="tok-123"))
    Schedule(client.celery_app).add("job", "proj.task", 60)
    assert client.get("/api/entries").status_code == 401
    page = client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login"
    assert client.get("/static/htmx.min.js").status_code == 200  # no secret in it
    bearer = {"Authorization": "Bearer tok-123"}
    assert client.get("/api/entries", headers=bearer).status_code == 200
    assert client.get("/api/entries", headers={"Authorization": "Bearer nope"}).status_code == 401

    assert client.post("/login", data={"token": "nope"}).status_code == 401
    login = client.post("/login", data={"token": "tok-123"}, follow_redirects=False)
    assert login.status_code == 303
    session = login.cookies["redbeat-session"]
    assert "tok-123" not in session
    assert client.get("/api/entries").status_code == 200  # the session cookie


def test_basic_auth_is_asked_for_and_checked(dashboard: Any) -> None:
    client = dashboard(auth=Auth(username="ops", password="pw-456"))
    refused = client.get("/api/entries")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic ")

    def basic(user: str, password: str) -> dict[str, str]:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    assert client.get("/api/entries", headers=basic("ops", "pw-456")).status_code == 200
    assert client.get("/api/entries", headers=basic("ops", "wrong")).status_code == 401
    assert client.get("/api/entries", headers=basic("root", "pw-456")).status_code == 401


def test_half_a_basic_auth_is_refused() -> None:
    with pytest.raises(ValueError, match="both a user name and a password"):
        Auth(username="ops")


# ----------------------------------------------------------------------------- start-up


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.invalid"])
def test_listening_beyond_the_loopback_without_auth_is_refused_at_start_up(
    host: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_WEB_")}
    done = subprocess.run(
        [REDBEAT, "--url", "redis://127.0.0.1:1/0", "web", "--host", host, "--port", "1"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"refusing to listen on {host}" in done.stderr
    assert "REDBEAT_WEB_TOKEN" in done.stderr
    assert "Uvicorn running" not in done.stderr


def test_a_storage_password_never_appears_in_any_response(
    redbeat_server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """A real ``redbeat web`` on a server that needs a password: every page, fragment and
    endpoint is read, errors included, and none holds the password."""
    server = redbeat_server_factory()
    server.call("ACL", "SETUSER", "default", "resetpass", f">{SECRET}")
    url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
    from celery import Celery

    app = Celery("secret-web", set_as_current=False)
    app.conf.redbeat_url = url
    Schedule(app).add("job", "proj.task", 60)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    env["REDBEAT_URL"] = url  # in the environment, not in the arguments ps shows
    try:
        with running_web(tmp_path, ["redbeat"], env) as web:
            seen = []
            for path in (
                "/", "/cluster", "/entries/job", "/entries/missing", "/fragments/rows",
                "/fragments/cluster", "/fragments/banner", "/fragments/entry/job",
                "/api/entries", "/api/entries/job", "/api/entries/job/history",
                "/api/cluster", "/api/csrf", "/api/openapi.json", "/api/entries?state=x",
            ):  # fmt: skip
                try:
                    with urllib.request.urlopen(web.base + path, timeout=10) as response:
                        seen.append(response.read().decode())
                except urllib.error.HTTPError as error:
                    seen.append(error.read().decode())
            everything = "\n".join(seen)
            assert "proj.task" in everything
            assert "redis://:**@127.0.0.1" in everything  # the masked URL is shown
            assert SECRET not in everything
            assert SECRET not in web.output()
    finally:
        runtime = getattr(app, "redbeat_runtime", None)
        if runtime is not None:
            runtime.close()


def test_behind_a_reverse_proxy_every_link_carries_the_prefix(
    redbeat_url: str, tmp_path: Path
) -> None:
    """``--root-path /redbeat``: the proxy strips the prefix before passing a request on, and
    every link, script and htmx URL on the pages carries it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    from celery import Celery

    app = Celery("proxied", set_as_current=False)
    app.conf.redbeat_url = redbeat_url
    Schedule(app).add("job", "proj.task", 60)
    with running_web(tmp_path, ["redbeat", "--url", redbeat_url], env, root_path="/redbeat") as web:
        with urllib.request.urlopen(web.base + "/", timeout=10) as response:
            page = response.read().decode()
        with urllib.request.urlopen(web.base + "/entries/job", timeout=10) as response:
            entry = response.read().decode()
        with urllib.request.urlopen(web.base + "/api/openapi.json", timeout=10) as response:
            document = json.loads(response.read())
    urls = re.findall(r'(?:href|src|hx-get|hx-post|hx-patch|hx-delete|action)="([^"]+)"',
                      page + entry)  # fmt: skip
    local = [u for u in urls if u.startswith("/")]
    assert local, urls
    assert all(u.startswith("/redbeat/") for u in local), local
    assert "/redbeat/entries/job" in local
    assert "/redbeat/api/entries/job/pause" in local
    assert document["servers"] == [{"url": "/redbeat"}]
    runtime = getattr(app, "redbeat_runtime", None)
    if runtime is not None:
        runtime.close()


def test_celery_redbeat_web_serves_the_apps_schedule(redbeat_url: str, tmp_path: Path) -> None:
    """The same command inside Celery's: ``celery -A proj redbeat web``."""
    from redbeat_test_support import COMMANDS_PROJ

    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    env["REDBEAT_TEST_URL"] = redbeat_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    from celery import Celery

    app = Celery("other", set_as_current=False)
    app.conf.redbeat_url = redbeat_url
    Schedule(app).add("from-celery", "proj.task", 60)
    with (
        running_web(tmp_path, ["celery", "-A", "proj", "redbeat"], env) as web,
        urllib.request.urlopen(web.base + "/api/entries", timeout=10) as response,
    ):
        listed = json.loads(response.read())
    assert [e["name"] for e in listed["entries"]] == ["from-celery"]
    assert listed["entries"][0]["next"]["local"].endswith(("CET", "CEST"))  # Europe/Paris
    runtime = getattr(app, "redbeat_runtime", None)
    if runtime is not None:
        runtime.close()
