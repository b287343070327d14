"""``redbeat apply FILE``, run as operators run it: the installed executable as a subprocess
against a real server, its plan read from ``--json`` and its plain output, and the stored
schedule read back with ``redbeat list --json`` (and the server itself where it matters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from redbeat_test_support import COMMANDS_PROJ, ok, run

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry

BASE = ("redbeat", "-A", "proj")

TOML = """\
[entries.every-30s]
task = "tasks.add"
every = 30
args = [1, 2]

[entries.nightly]
task = "tasks.report"
cron = "30 4 * * *"
kwargs = { region = "eu" }

[entries.launch]
task = "tasks.launch"
at = 2030-01-01T09:00:00Z
enabled = false
"""

#: The same entries in the two other formats.
JSON = json.dumps(
    {
        "entries": {
            "every-30s": {"task": "tasks.add", "every": 30, "args": [1, 2]},
            "nightly": {"task": "tasks.report", "cron": "30 4 * * *", "kwargs": {"region": "eu"}},
            "launch": {"task": "tasks.launch", "at": "2030-01-01T09:00:00Z", "enabled": False},
        }
    }
)
YAML = """\
entries:
  every-30s: {task: tasks.add, every: 30, args: [1, 2]}
  nightly: {task: tasks.report, cron: "30 4 * * *", kwargs: {region: eu}}
  launch: {task: tasks.launch, at: "2030-01-01T09:00:00Z", enabled: false}
"""


@pytest.fixture(scope="session")
def redbeat_server_kind() -> str:
    """One kind: apply writes through ``Schedule``, tested on every kind elsewhere."""
    return "valkey"


@pytest.fixture
def workdir(tmp_path: Path, redbeat_url: str) -> Path:
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)
    (tmp_path / "schedule.toml").write_text(TOML)
    return tmp_path


def listed(workdir: Path, url: str) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in json.loads(ok(run(workdir, url, *BASE, "list", "--json")))}


def dump(client: Any) -> dict[str, Any]:
    """Every key of the server and its value: what "nothing written" compares."""
    found: dict[str, Any] = {}
    for key in client.scan_iter("*"):
        kind = client.type(key)
        found[key] = {
            "hash": client.hgetall,
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            "set": client.smembers,
            "string": client.get,
            "list": lambda k: client.lrange(k, 0, -1),  # the audit log
        }[kind](key)
    return found


def test_apply_adds_changes_keeps_runs_and_leaves_the_rest(
    workdir: Path, redbeat_url: str, make_app: Any
) -> None:
    app = make_app()
    nightly = RedBeatSchedulerEntry("nightly", "tasks.report", 60, app=app).save()
    next(nightly)  # one run: its count and last run must survive the change
    ok(run(workdir, redbeat_url, *BASE, "add", "every-30s", "tasks.add", "--every", "30",
           "--args", "[1, 2]"))  # fmt: skip
    ok(run(workdir, redbeat_url, *BASE, "add", "other", "tasks.other", "--every", "60"))
    before = listed(workdir, redbeat_url)["nightly"]
    assert before["total_run_count"] == 1

    output = ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml"))
    assert output.splitlines() == [
        "+ launch: tasks.launch, once at 2030-01-01 09:00:00 UTC, disabled",
        "~ nightly: schedule every minute -> at 04:30 every day (crontab 30 4 * * *)",
        '~ nightly: kwargs {} -> {"region": "eu"}',
        "unchanged: every-30s",
        "left alone (not in the file; --prune removes them): other",
        "applied: 1 added, 1 changed, 0 removed, 1 unchanged",
    ]
    after = listed(workdir, redbeat_url)
    assert sorted(after) == ["every-30s", "launch", "nightly", "other"]
    assert (after["launch"]["state"], after["launch"]["task"]) == ("disabled", "tasks.launch")
    changed = after["nightly"]
    assert (changed["schedule"], changed["kwargs"]) == (
        "at 04:30 every day (crontab 30 4 * * *)",
        {"region": "eu"},
    )
    assert changed["total_run_count"] == 1
    assert changed["last_run_at"] == before["last_run_at"]
    audited = json.loads(ok(run(workdir, redbeat_url, *BASE, "audit", "-n", "2", "--json")))
    assert [(r["action"], r["names"], r["detail"]) for r in audited] == [
        ("apply: update", ["nightly"], "from schedule.toml; kwargs, schedule"),
        ("apply: add", ["launch"], "from schedule.toml"),
    ]

    again = ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml"))
    assert again.splitlines()[-1] == "nothing to change (3 unchanged)"


def test_prune_removes_entries_the_file_does_not_name_but_never_statics(
    workdir: Path, redbeat_url: str, make_app: Any
) -> None:
    static_app = make_app(beat_schedule={"from-app": {"task": "tasks.static", "schedule": 60}})
    RedBeatScheduler(app=static_app).close()  # a beat start records its statics
    ok(run(workdir, redbeat_url, *BASE, "add", "stray", "tasks.stray", "--every", "60"))
    assert listed(workdir, redbeat_url)["from-app"]["static"] is True

    plan = json.loads(ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml", "--prune",
                             "--json")))  # fmt: skip
    assert (plan["remove"], plan["left_alone"]) == (["stray"], [])
    # Celery's nightly cleanup comes back with every beat start, as statics do.
    assert plan["static_kept"] == ["celery.backend_cleanup", "from-app"]
    assert plan["written"] is True
    assert sorted(listed(workdir, redbeat_url)) == [
        "celery.backend_cleanup", "every-30s", "from-app", "launch", "nightly"
    ]  # fmt: skip

    text = ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml", "--prune"))
    assert (
        "kept (static: from beat_schedule or Celery's own; --prune never removes them): "
        "celery.backend_cleanup, from-app" in text.splitlines()
    )


def test_dry_run_shows_the_plan_and_writes_nothing(
    workdir: Path, redbeat_url: str, client: Any
) -> None:
    ok(run(workdir, redbeat_url, *BASE, "add", "stray", "tasks.stray", "--every", "60"))
    stored = dump(client)
    output = ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml", "--prune",
                    "--dry-run"))  # fmt: skip
    assert output.splitlines()[-1] == (
        "dry run: 3 to add, 0 to change, 1 to remove, 0 unchanged; nothing written"
    )
    assert "- stray" in output.splitlines()
    plan = json.loads(ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml", "--prune",
                             "--dry-run", "--json")))  # fmt: skip
    assert [entry["name"] for entry in plan["add"]] == ["every-30s", "launch", "nightly"]
    assert (plan["remove"], plan["written"]) == (["stray"], False)
    assert dump(client) == stored


def test_the_json_plan_names_each_changed_field(workdir: Path, redbeat_url: str) -> None:
    ok(run(workdir, redbeat_url, *BASE, "add", "nightly", "tasks.report", "--cron", "0 3 * * *"))
    plan = json.loads(ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml", "--json")))
    assert plan["change"] == [
        {
            "name": "nightly",
            "fields": {
                "schedule": {
                    "from": "at 03:00 every day (crontab 0 3 * * *)",
                    "to": "at 04:30 every day (crontab 30 4 * * *)",
                },
                "kwargs": {"from": {}, "to": {"region": "eu"}},
            },
            "quarantined": False,
            "paused": False,
            "static": False,
        }
    ]
    assert plan["add"][0] == {
        "name": "every-30s",
        "task": "tasks.add",
        "schedule": "every 30 seconds",
        "args": [1, 2],
        "kwargs": {},
        "options": {},
        "enabled": True,
        "policy": {},
    }


def test_a_paused_entry_keeps_its_pause_when_the_file_changes_it(
    workdir: Path, redbeat_url: str, client: Any
) -> None:
    ok(run(workdir, redbeat_url, *BASE, "add", "nightly", "tasks.report", "--cron", "0 3 * * *"))
    ok(run(workdir, redbeat_url, *BASE, "pause", "nightly", "--reason", "migration", "--by",
           "ops"))  # fmt: skip
    output = ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml"))
    assert "  nightly stays paused" in output.splitlines()
    nightly = listed(workdir, redbeat_url)["nightly"]
    assert (nightly["state"], nightly["reason"], nightly["paused_by"]) == (
        "paused",
        "migration",
        "ops",
    )
    assert nightly["kwargs"] == {"region": "eu"}
    assert client.zscore("redbeat::schedule", "redbeat:nightly") is None  # not scheduled


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '[entries.fine]\ntask = "t"\nevery = 30\n\n[entries.bad]\ntask = "t"\nevery = 0\n',
            "bad.toml: entry 'bad', field 'every': invalid schedule every 0 s: an interval "
            "must be at least 0.1 s",
        ),
        (
            '[entries.fine]\ntask = "t"\nevery = 30\n\n[entries.bad]\ntask = "t"\ncron = "0 3"\n',
            "bad.toml: entry 'bad', field 'cron': '0 3': five fields, 'minute hour "
            "day-of-month month day-of-week'",
        ),
        (
            '[entries.fine]\ntask = "t"\nevery = 30\n\n[entries.bad]\ntask = "t"\nevery = 5\n'
            "kwargs = [1]\n",
            "bad.toml: entry 'bad', field 'kwargs': [1]: a table (a JSON object) with string keys",
        ),
        (
            '[entries.fine]\ntask = "t"\nevery = 30\n\n[entries.":bad"]\ntask = "t"\nevery = 5\n',
            "bad.toml: entry ':bad', field 'name': invalid name ':bad': a non-empty string",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_entry_and_field_and_nothing_is_written(
    workdir: Path, redbeat_url: str, client: Any, text: str, says: str
) -> None:
    ok(run(workdir, redbeat_url, *BASE, "add", "stray", "tasks.stray", "--every", "60"))
    stored = dump(client)
    (workdir / "bad.toml").write_text(text)
    done = run(workdir, redbeat_url, *BASE, "apply", "bad.toml", "--prune")
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {says}")
    assert done.stdout == ""
    assert dump(client) == stored


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("apply", "missing.toml"), "does not exist"),
        (("apply", "proj.py"), "a file ending in .toml, .json, .yaml, .yml"),
        (("apply",), "Missing argument 'FILE'"),
    ],
)
def test_usage_errors_exit_2(
    workdir: Path, redbeat_url: str, argv: tuple[str, ...], says: str
) -> None:
    done = run(workdir, redbeat_url, *BASE, *argv)
    assert done.returncode == 2
    assert says in done.stderr


@pytest.mark.parametrize(("name", "text"), [("s.toml", TOML), ("s.json", JSON), ("s.yaml", YAML)])
def test_toml_json_and_yaml_files_store_the_same_schedule(
    workdir: Path, redbeat_url: str, name: str, text: str
) -> None:
    (workdir / name).write_text(text)
    ok(run(workdir, redbeat_url, *BASE, "apply", name))
    stored = listed(workdir, redbeat_url)
    assert {n: (e["task"], e["schedule"], e["args"], e["kwargs"], e["state"])
            for n, e in stored.items()} == {
        "every-30s": ("tasks.add", "every 30 seconds", [1, 2], {}, "scheduled"),
        "launch": ("tasks.launch", "once at 2030-01-01 09:00:00 UTC", [], {}, "disabled"),
        "nightly": ("tasks.report", "at 04:30 every day (crontab 30 4 * * *)", [],
                    {"region": "eu"}, "scheduled"),
    }  # fmt: skip
    # Each format read back the same: applying the TOML after any of them changes nothing.
    plan = json.loads(ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml", "--json")))
    assert plan["unchanged"] == ["every-30s", "launch", "nightly"]


def test_a_yaml_file_without_pyyaml_names_the_extra(workdir: Path, redbeat_url: str) -> None:
    """PyYAML is the optional extra ``redbeat[yaml]``: an environment without it (the import
    refused here, as when it is not installed) is told which extra to install."""
    (workdir / "s.yaml").write_text(YAML)
    no_yaml = "import sys; sys.modules['yaml'] = None; from redbeat.cli import main; main()"
    done = run(workdir, redbeat_url, "python", "-c", no_yaml, *BASE[1:], "apply", "s.yaml")
    assert done.returncode == 1
    assert done.stderr == (
        "Error: s.yaml: reading YAML needs PyYAML: pip install 'redbeat[yaml]'\n"
    )


def test_apply_inside_celery(workdir: Path, redbeat_url: str) -> None:
    output = ok(run(workdir, redbeat_url, "celery", "-A", "proj", "redbeat", "apply",
                    "schedule.toml"))  # fmt: skip
    assert output.splitlines()[-1] == "applied: 3 added, 0 changed, 0 removed, 0 unchanged"


def test_quarantined_and_unreadable_entries_are_written_again_as_the_file_says(
    workdir: Path, redbeat_url: str, client: Any
) -> None:
    ok(run(workdir, redbeat_url, *BASE, "add", "every-30s", "tasks.add", "--every", "30",
           "--args", "[1, 2]"))  # fmt: skip
    ok(run(workdir, redbeat_url, *BASE, "add", "nightly", "tasks.report", "--every", "60"))
    client.hset("redbeat::quarantine", "redbeat:every-30s", "a test put it here")
    client.hset("redbeat:nightly", "definition", "{not json")
    output = ok(run(workdir, redbeat_url, *BASE, "apply", "schedule.toml"))
    assert "~ every-30s: leaves the quarantine" in output.splitlines()
    assert "~ nightly: task (cannot be read) -> tasks.report" in output.splitlines()
    assert not client.exists("redbeat::quarantine")
    stored = listed(workdir, redbeat_url)
    assert (stored["every-30s"]["state"], stored["nightly"]["state"]) == ("scheduled", "scheduled")
    assert stored["nightly"]["kwargs"] == {"region": "eu"}
