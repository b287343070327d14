"""The schedule commands on the SQLite example backend (a third party's storage): the same
``redbeat`` executable, as a subprocess, against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("redbeat_sqlite", reason="the SQLite example is installed for these tests")

BIN = Path(sys.executable).parent


def redbeat(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDBEAT_APP", "REDBEAT_URL")}
    return subprocess.run(
        [str(BIN / "redbeat"), "--url", url, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_list_add_pause_and_doctor_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schedule.db'}"
    assert redbeat(url, "add", "job", "tasks.add", "--every", "30").returncode == 0
    assert redbeat(url, "add", "off", "tasks.add", "--every", "60", "--disabled").returncode == 0
    paused = redbeat(url, "pause", "job", "--reason", "testing", "--by", "me")
    assert paused.returncode == 0, paused.stderr
    listed = json.loads(redbeat(url, "list", "--json").stdout)
    assert [(e["name"], e["state"]) for e in listed] == [("job", "paused"), ("off", "disabled")]
    lock = redbeat(url, "lock")
    assert lock.returncode == 1
    assert "cannot report its status" in lock.stderr
    doctor = json.loads(redbeat(url, "doctor", "--json").stdout)
    verdicts = {finding["check"]: finding["verdict"] for finding in doctor}
    assert verdicts == {
        "lock": "warning",
        "quarantine": "ok",
        "statics": "ok",
        "tasks": "warning",  # a URL alone registers no task
    }


def test_apply_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schedule.db'}"
    assert redbeat(url, "add", "stray", "tasks.stray", "--every", "60").returncode == 0
    file = tmp_path / "schedule.toml"
    file.write_text(
        '[entries.job]\ntask = "tasks.add"\nevery = 30\n\n'
        '[entries.nightly]\ntask = "tasks.report"\ncron = "0 3 * * *"\n'
    )
    applied = redbeat(url, "apply", str(file), "--prune")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[-1] == "applied: 2 added, 0 changed, 1 removed, 0 unchanged"
    listed = json.loads(redbeat(url, "list", "--json").stdout)
    assert [(e["name"], e["schedule"]) for e in listed] == [
        ("job", "every 30 seconds"),
        ("nightly", "at 03:00 every day (crontab 0 3 * * *)"),
    ]
    again = redbeat(url, "apply", str(file), "--prune")
    assert again.stdout == "unchanged: job, nightly\nnothing to change (2 unchanged)\n"
