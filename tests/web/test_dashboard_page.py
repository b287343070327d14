"""Every shell command docs/dashboard.md shows runs here, in page order, for real.

Each ``redbeat ... web`` line starts the real dashboard on the quick start's kind of app
(``proj.py``, storage on a real server) in the background, with the environment the page sets
before it (``export`` lines, ``VAR=value`` prefixes) and a free port in ``REDBEAT_WEB_PORT`` (the
page shows the default port; the option reads that variable); the test then asks it for a page
as the page says a client would (a token, basic auth, the path prefix, read-only) and stops it by
its pid. A ``console`` block's command must print what the page shows. ``pip install`` lines are
checked by tests/docs/test_snippets.py (they need built wheels and the index).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("starlette", reason="the web extra: uv sync --extra web")

from redbeat_test_support import COMMANDS_PROJ, free_port

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "dashboard.md"
FENCE = re.compile(r"^```(?P<lang>bash|console)\n(?P<body>.*?)^```$", re.M | re.S)
BIN = Path(sys.executable).parent


def blocks() -> list[tuple[str, str]]:
    return [(m["lang"], m["body"]) for m in FENCE.finditer(PAGE.read_text(encoding="utf-8"))]


def environment(workdir: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")]))
    env["REDBEAT_TEST_URL"] = url
    env.update(extra)
    return env


def fetch(url: str, headers: dict[str, str], method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def serve_and_check(command: str, workdir: Path, env: dict[str, str]) -> str:
    """Run ``command`` (a ``web`` command) in the background, check what it serves, stop it;
    returns what the check saw, for the caller's assertions."""
    port = free_port()
    env = {**env, "REDBEAT_WEB_PORT": str(port)}
    # VAR=value prefixes: bash sets them for the command; the client needs them too.
    for word in shlex.split(command):
        name, equals, value = word.partition("=")
        if not equals or not re.fullmatch(r"[A-Z_]+", name):
            break
        env[name] = value
    log = workdir / f"web-{port}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            ["bash", "-c", command], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    headers = {"Accept": "application/json"}
    if env.get("REDBEAT_WEB_TOKEN"):
        headers["Authorization"] = f"Bearer {env['REDBEAT_WEB_TOKEN']}"
    if env.get("REDBEAT_WEB_USER"):
        raw = f"{env['REDBEAT_WEB_USER']}:{env['REDBEAT_WEB_PASSWORD']}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(raw).decode()}"
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if popen.poll() is not None:
                pytest.fail(f"`{command}` exited:\n{log.read_text()}")
            try:
                status, _ = fetch(base + "/static/dashboard.css", {})
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`{command}` did not answer in 30 s:\n{log.read_text()}")
            time.sleep(0.05)
        if "Authorization" in headers:
            assert fetch(base + "/api/entries", {})[0] == 401, "open without its credentials"
        status, body = fetch(base + "/api/entries", headers)
        assert status == 200, body
        assert '"name":"job"' in body
        status, page = fetch(base + "/", {**headers, "Accept": "text/html"})
        assert status == 200, page
        if "--read-only" in command:
            refused = fetch(base + "/api/entries/job/disable", headers, method="POST")
            assert refused[0] == 403
            assert "read-only" in refused[1]
        return page
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()


def test_every_command_on_the_page_runs(redbeat_url: str, tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)
    from celery import Celery

    from redbeat_core.catalog import Schedule

    app = Celery("page", set_as_current=False)
    app.conf.redbeat_url = redbeat_url
    Schedule(app).add("job", "proj.task", 60)
    ran: list[str] = []
    for lang, body in blocks():
        env = environment(tmp_path, redbeat_url)
        if lang == "console":
            command, *expected = body.rstrip("\n").split("\n")
            assert command.startswith("$ ")
            done = subprocess.run(
                ["bash", "-c", command[2:]], cwd=tmp_path, env=env, capture_output=True,
                text=True, timeout=60, check=False,
            )  # fmt: skip
            assert (done.stdout + done.stderr).rstrip("\n").split("\n") == expected
            assert done.returncode == 2
            ran.append(command[2:])
            continue
        for line in body.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if not command or command.startswith("pip install"):
                continue
            if command.startswith("export "):
                shown = subprocess.run(
                    ["bash", "-c", f"{command} && env -0"], env=env, capture_output=True,
                    timeout=30, check=True,
                ).stdout.decode()  # fmt: skip
                env.update(item.split("=", 1) for item in shown.split("\0") if "=" in item)
                ran.append(command)
                continue
            assert " web" in command, f"the page shows a command this test does not run: {line}"
            page = serve_and_check(command, tmp_path, env)
            if "--root-path" in command:
                prefix = re.search(r"--root-path (\S+)", command)
                assert prefix is not None
                assert f'src="{prefix[1]}/static/htmx.min.js"' in page
            ran.append(command)
    assert len(ran) >= 6, ran
    runtime: Any = getattr(app, "redbeat_runtime", None)
    if runtime is not None:
        runtime.close()
