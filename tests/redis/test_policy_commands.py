"""The scheduling policy commands, run as operators run them: the installed ``redbeat``
executable against a real server (one server kind: the commands send what ``Schedule`` sends,
tested on every kind in test_policies.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from redbeat_test_support import COMMANDS_PROJ, ok, run


@pytest.fixture(scope="session")
def redbeat_server_kind() -> str:
    return "valkey"


def test_the_commands_set_show_and_reset_a_policy(tmp_path: Path, redbeat_url: str) -> None:
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)

    def redbeat(*argv: str) -> str:
        return ok(run(tmp_path, redbeat_url, "redbeat", "-A", "proj", *argv))

    redbeat("add", "job", "tasks.add", "--every", "60", "--misfire", "skip", "--jitter", "5",
            "--end", "2099-01-01T00:00:00+00:00")  # fmt: skip
    shown = json.loads(redbeat("show", "job", "--json"))
    assert shown["policy"] == {
        "misfire": "skip",
        "jitter": 5.0,
        "end_at": "2099-01-01T00:00:00+00:00",
    }
    assert "misfire=skip, jitter=5s, end_at=2099-01-01 " in redbeat("show", "job")
    redbeat("edit", "job", "--misfire", "default", "--max-runs", "4")
    shown = json.loads(redbeat("show", "job", "--json"))
    assert shown["policy"] == {"jitter": 5.0, "end_at": "2099-01-01T00:00:00+00:00", "max_runs": 4}
    bad = run(tmp_path, redbeat_url, "redbeat", "-A", "proj", "edit", "job", "--jitter", "-1")
    assert bad.returncode == 1
    assert "policy.jitter -1.0: a finite number of seconds >= 0" in bad.stderr


def test_the_commands_name_blackout_calendars(tmp_path: Path, redbeat_url: str) -> None:
    calendars = '{"maintenance": {"cron": "* 2-3 * * *"}}'
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ + f"app.conf.redbeat_calendars = {calendars}\n")

    def redbeat(*argv: str) -> Any:
        return run(tmp_path, redbeat_url, "redbeat", "-A", "proj", *argv)

    ok(redbeat("add", "job", "tasks.add", "--every", "60", "--blackout", "maintenance",
               "--blackout-action", "postpone"))  # fmt: skip
    shown = json.loads(ok(redbeat("show", "job", "--json")))
    assert shown["policy"] == {"blackouts": ["maintenance"], "blackout_action": "postpone"}
    assert "blackouts=maintenance, blackout_action=postpone" in ok(redbeat("show", "job"))
    refused = redbeat("edit", "job", "--blackout", "maintenace")
    assert refused.returncode == 1
    assert "policy.blackouts 'maintenace': names of calendars in redbeat_calendars" in (
        refused.stderr
    )
    ok(redbeat("edit", "job", "--blackout", "none"))
    assert json.loads(ok(redbeat("show", "job", "--json")))["policy"]["blackouts"] == []


def test_an_apply_file_sets_the_whole_policy(tmp_path: Path, redbeat_url: str) -> None:
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)
    path = tmp_path / "schedule.toml"

    def apply(text: str) -> str:
        path.write_text(text)
        return ok(run(tmp_path, redbeat_url, "redbeat", "-A", "proj", "apply", str(path)))

    apply('[entries.job]\ntask = "tasks.add"\nevery = 60\n'
          'policy = { misfire = "run_all", start_at = 2030-01-01T00:00:00Z }\n')  # fmt: skip
    shown = json.loads(ok(run(tmp_path, redbeat_url, "redbeat", "-A", "proj", "show", "job",
                              "--json")))  # fmt: skip
    assert shown["policy"] == {"misfire": "run_all", "start_at": "2030-01-01T00:00:00+00:00"}
    assert shown["next_run"] == "2030-01-01T00:00:00+00:00"
    out = apply('[entries.job]\ntask = "tasks.add"\nevery = 60\npolicy = { jitter = 2 }\n')
    assert "policy" in out
    shown = json.loads(ok(run(tmp_path, redbeat_url, "redbeat", "-A", "proj", "show", "job",
                              "--json")))  # fmt: skip
    assert shown["policy"] == {"jitter": 2.0}


def test_the_calendar_commands(tmp_path: Path, redbeat_url: str) -> None:
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)

    def redbeat(*argv: str) -> Any:
        return run(tmp_path, redbeat_url, "redbeat", "-A", "proj", *argv)

    assert ok(redbeat("calendar")) == "no blackout calendar is declared or stored\n"
    out = ok(redbeat("calendar", "set", "freeze", "--between", "2030-12-20T00:00",
                     "2031-01-04T00:00", "--cron", "* 2-3 * * *",
                     "--tz", "Europe/Paris"))  # fmt: skip
    assert out.startswith("stored calendar freeze: cron '* 2-3 * * *', 2030-12-20 00:00 to ")
    listed = json.loads(ok(redbeat("calendar", "--json")))
    assert listed[0]["spec"] == {
        "cron": ["* 2-3 * * *"],
        "between": [["2030-12-20T00:00", "2031-01-04T00:00"]],
        "tz": "Europe/Paris",
    }
    ok(redbeat("add", "job", "tasks.add", "--every", "60", "--blackout", "freeze"))
    bad = redbeat("calendar", "set", "x", "--tz", "Mars/Base", "--cron", "* * * * *")
    assert bad.returncode == 1
    assert "unknown time zone 'Mars/Base'" in bad.stderr
    assert ok(redbeat("calendar", "delete", "freeze")) == "deleted calendar freeze\n"


def test_a_cron_with_its_own_time_zone_from_the_command_and_a_file(
    tmp_path: Path, redbeat_url: str
) -> None:
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)

    def redbeat(*argv: str) -> Any:
        return run(tmp_path, redbeat_url, "redbeat", "-A", "proj", *argv)

    out = ok(redbeat("add", "open", "tasks.open", "--cron", "30 9 * * 1-5", "--tz",
                     "America/New_York"))  # fmt: skip
    assert out == "added open: scheduled, crontab 30 9 * * 1-5 in America/New_York\n"
    runs = json.loads(ok(redbeat("next", "open", "-n", "2", "--json")))
    assert all(r[11:] in ("13:30:00+00:00", "14:30:00+00:00") for r in runs)  # EDT / EST
    bad = redbeat("add", "x", "tasks.x", "--every", "60", "--tz", "UTC")
    assert bad.returncode == 2
    assert "--tz is the time zone of a --cron schedule" in bad.stderr
    path = tmp_path / "schedule.toml"
    path.write_text('[entries.open]\ntask = "tasks.open"\ncron = "30 9 * * 1-5"\n'
                    'tz = "America/New_York"\n')  # fmt: skip
    dry_run = ok(redbeat("apply", str(path), "--dry-run"))
    assert dry_run.splitlines()[-1] == "nothing to change (1 unchanged)"
    path.write_text('[entries.open]\ntask = "tasks.open"\ncron = "30 9 * * 1-5"\n')
    changed = ok(redbeat("apply", str(path)))
    was = "crontab 30 9 * * 1-5 in America/New_York"
    assert f"~ open: schedule {was} -> crontab 30 9 * * 1-5" in changed
    assert "in America/New_York" not in ok(redbeat("show", "open"))
