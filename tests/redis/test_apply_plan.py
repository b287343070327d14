"""``redbeat apply``'s pure parts, without a server: reading the file (TOML, JSON, YAML, and
every refusal naming the file, the entry and the field), the plan against stored entries, and
the lines it prints. The command itself runs against real servers in test_apply.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from celery.schedules import crontab, schedule

from redbeat.apply import (
    ApplyFileError,
    Wanted,
    make_plan,
    plan_lines,
    read_entries,
    same_schedule,
    summary,
)
from redbeat.schedule_text import parse_cron, parse_once
from redbeat_core.catalog import EntryInfo, EntryState
from redbeat_core.schedules import clocked
from redbeat_core.words import describe_schedule

TOML = """
[entries.every-30s]
task = "tasks.add"
every = 30
args = [1, 2]

[entries.nightly]
task = "tasks.report"
cron = "30 4 * * *"
kwargs = { region = "eu" }
options = { queue = "reports" }

[entries.launch]
task = "tasks.launch"
at = 2030-01-01T09:00:00Z
enabled = false
"""

JSON = {
    "entries": {
        "every-30s": {"task": "tasks.add", "every": 30, "args": [1, 2]},
        "nightly": {
            "task": "tasks.report",
            "cron": "30 4 * * *",
            "kwargs": {"region": "eu"},
            "options": {"queue": "reports"},
        },
        "launch": {"task": "tasks.launch", "at": "2030-01-01T09:00:00+00:00", "enabled": False},
    }
}

YAML = """
entries:
  every-30s:
    task: tasks.add
    every: 30
    args: [1, 2]
  nightly:
    task: tasks.report
    cron: "30 4 * * *"
    kwargs: {region: eu}
    options: {queue: reports}
  launch:
    task: tasks.launch
    at: 2030-01-01T09:00:00Z
    enabled: false
"""


def written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def stored(
    name: str,
    task: str | None,
    sched: Any,
    *,
    state: EntryState = EntryState.SCHEDULED,
    static: bool = False,
    **fields: Any,
) -> EntryInfo:
    """An entry as ``Schedule.entries`` lists it."""
    return EntryInfo(
        name=name,
        key=f"redbeat:{name}",
        state=state,
        task=task,
        schedule=sched,
        schedule_text=describe_schedule(sched) if task is not None else "(cannot be read)",
        next_run=None,
        last_run_at=None,
        total_run_count=0,
        static=static,
        **fields,
    )


def wanted(name: str, task: str, sched: Any, **fields: Any) -> Wanted:
    return Wanted(name, task, sched, "every", **fields)


# ----------------------------------------------------------------------------- the file


def test_toml_json_and_yaml_read_the_same_entries(tmp_path: Path) -> None:
    from_toml = read_entries(written(tmp_path, "s.toml", TOML))
    from_json = read_entries(written(tmp_path, "s.json", json.dumps(JSON)))
    from_yaml = read_entries(written(tmp_path, "s.yml", YAML))
    assert sorted(from_toml) == ["every-30s", "launch", "nightly"]
    for other in (from_json, from_yaml):
        assert sorted(other) == sorted(from_toml)
        for name, entry in from_toml.items():
            twin = other[name]
            assert (twin.task, twin.args, twin.kwargs, twin.options, twin.enabled) == (
                entry.task,
                entry.args,
                entry.kwargs,
                entry.options,
                entry.enabled,
            )
            assert same_schedule(twin.schedule, entry.schedule), name
    nightly = from_toml["nightly"]
    assert (nightly.schedule_field, describe_schedule(nightly.schedule)) == (
        "cron",
        "at 04:30 every day (crontab 30 4 * * *)",
    )
    assert from_toml["every-30s"].schedule.run_every == timedelta(seconds=30)
    assert from_toml["launch"].schedule.clocked_time == datetime(2030, 1, 1, 9, tzinfo=UTC)


def test_a_time_without_a_zone_is_utc_as_for_add_at(tmp_path: Path) -> None:
    path = written(tmp_path, "s.toml", '[entries.x]\ntask = "t"\nat = 2030-01-01T09:00:00\n')
    assert read_entries(path)["x"].schedule.clocked_time == datetime(2030, 1, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "entry", "field", "says"),
    [
        ('[entries.x]\ntask = "t"\ncron = "0 3 *"\n', "x", "cron", "five fields"),
        ('[entries.x]\ntask = "t"\ncron = "70 * * * *"\n', "x", "cron", "70 > 59"),
        ('[entries.x]\ntask = "t"\nevery = "30"\n', "x", "every", "a number of seconds"),
        ('[entries.x]\ntask = "t"\nevery = true\n', "x", "every", "a number of seconds"),
        ('[entries.x]\ntask = "t"\nevery = nan\n', "x", "every", "a number of seconds"),
        ('[entries.x]\ntask = "t"\nat = "soon"\n', "x", "at", "an ISO 8601 time"),
        ('[entries.x]\ntask = "t"\nat = 2030-01-01\n', "x", "at", "an ISO 8601 time"),
        ('[entries.x]\ntask = "t"\n', "x", "every/cron/at", "found none"),
        ('[entries.x]\ntask = "t"\nevery = 5\ncron = "* * * * *"\n', "x", "every/cron",
         "give exactly one of every"),
        ('[entries.x]\nevery = 5\n', "x", "task", "missing: the task's name"),
        ('[entries.x]\ntask = ""\nevery = 5\n', "x", "task", "a non-empty string"),
        ('[entries.x]\ntask = "t"\nschedule = 5\n', "x", "schedule", "the fields are task, every"),
        ('[entries.x]\ntask = "t"\nevery = 5\nargs = {a = 1}\n', "x", "args", "a list"),
        ('[entries.x]\ntask = "t"\nevery = 5\nkwargs = [1]\n', "x", "kwargs", "a table"),
        ('[entries.x]\ntask = "t"\nevery = 5\noptions = 3\n', "x", "options", "a table"),
        ('[entries.x]\ntask = "t"\nevery = 5\nenabled = "no"\n', "x", "enabled", "true or false"),
    ],
)  # fmt: skip
def test_a_bad_entry_names_the_file_the_entry_and_the_field(
    tmp_path: Path, text: str, entry: str, field: str, says: str
) -> None:
    path = written(tmp_path, "schedule.toml", text)
    with pytest.raises(ApplyFileError) as caught:
        read_entries(path)
    assert (caught.value.path, caught.value.entry, caught.value.field) == (path, entry, field)
    assert str(caught.value).startswith(f"{path}: entry {entry!r}, field {field!r}: ")
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("s.toml", "[entries.x\n", "not valid TOML"),
        ("s.json", "{", "not valid JSON"),
        ("s.yaml", "entries: [", "not valid YAML"),
        ("s.toml", "[jobs.x]\n", "no 'entries' table"),
        ("s.toml", "entries = {}\n[jobs.x]\n", "unknown top-level key 'jobs'"),
        ("s.json", '{"entries": []}', "'entries' must be a table"),
        ("s.json", "[]", "a list, as `redbeat export` writes for `redbeat import`"),
        ("s.yaml", "entries:\n  on: {task: t, every: 5}\n", "True is not a string"),
        ("s.txt", "", "unknown format"),
    ],
)
def test_a_bad_file_names_the_file_and_what_is_wrong(
    tmp_path: Path, name: str, text: str, says: str
) -> None:
    path = written(tmp_path, name, text)
    with pytest.raises(ApplyFileError, match=f"^{path}: .*{says}"):
        read_entries(path)


# ----------------------------------------------------------------------------- the plan


def test_the_plan_adds_changes_and_leaves_alone_what_the_file_does_not_name() -> None:
    file = {
        "new": wanted("new", "tasks.new", schedule(timedelta(seconds=30))),
        "same": wanted("same", "tasks.same", parse_cron("0 3 * * *")),
        "moved": wanted("moved", "tasks.moved", parse_cron("30 4 * * *"), kwargs={"r": "eu"}),
    }
    plan = make_plan(
        file,
        [
            # stored by Python with ints, the file says "0 3 * * *": the same crontab
            stored("same", "tasks.same", crontab(minute=0, hour=3)),
            stored("moved", "tasks.moved", crontab(minute=0, hour=3)),
            stored("other", "tasks.other", schedule(timedelta(seconds=60))),
        ],
        prune=False,
    )
    assert [entry.name for entry in plan.add] == ["new"]
    assert plan.unchanged == ("same",)
    (change,) = plan.change
    assert change.name == "moved"
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        (
            "schedule",
            "at 03:00 every day (crontab 0 3 * * *)",
            "at 04:30 every day (crontab 30 4 * * *)",
        ),
        ("kwargs", {}, {"r": "eu"}),
    ]
    assert (plan.remove, plan.left_alone, plan.static_kept) == ((), ("other",), ())
    assert plan.writes


def test_prune_removes_what_the_file_does_not_name_except_statics() -> None:
    plan = make_plan(
        {},
        [
            stored("dynamic", "tasks.a", schedule(timedelta(seconds=60))),
            stored("from-beat-schedule", "tasks.b", schedule(timedelta(seconds=60)), static=True),
            stored("celery.backend_cleanup", "celery.backend_cleanup", crontab("0", "4", "*")),
        ],
        prune=True,
    )
    assert plan.remove == ("dynamic",)
    assert plan.static_kept == ("celery.backend_cleanup", "from-beat-schedule")
    assert plan.left_alone == ()


def test_nothing_differs_nothing_is_written() -> None:
    every = schedule(timedelta(seconds=60))
    plan = make_plan(
        {"a": wanted("a", "tasks.a", schedule(timedelta(seconds=60)), args=[1])},
        [stored("a", "tasks.a", every, args=(1,))],
        prune=True,
    )
    assert plan.unchanged == ("a",)
    assert not plan.writes
    assert summary(plan, dry_run=False) == "nothing to change (1 unchanged)"


def test_paused_static_and_unreadable_entries_are_said_so() -> None:
    every = schedule(timedelta(seconds=60))
    plan = make_plan(
        {
            "paused": wanted("paused", "tasks.p", schedule(timedelta(seconds=30))),
            "static": wanted("static", "tasks.s2", every),
            "broken": wanted("broken", "tasks.b", every),
        },
        [
            stored("paused", "tasks.p", every, state=EntryState.PAUSED, reason="deploy"),
            stored("static", "tasks.s", every, static=True),
            stored("broken", None, None, state=EntryState.QUARANTINED, reason="not JSON"),
        ],
        prune=False,
    )
    changes = {change.name: change for change in plan.change}
    assert changes["paused"].paused
    assert changes["static"].static
    broken = changes["broken"]
    assert broken.unreadable
    assert broken.quarantined
    assert [f.field for f in broken.fields] == [
        "task", "schedule", "args", "kwargs", "options", "enabled", "policy"
    ]  # fmt: skip
    lines = [text for _, text in plan_lines(plan)]
    assert "~ broken: task (cannot be read) -> tasks.b" in lines
    assert "~ broken: leaves the quarantine" in lines
    assert "~ broken: kwargs (cannot be read) -> {}" in lines
    assert "  paused stays paused" in lines
    assert "~ static: task tasks.s -> tasks.s2" in lines
    assert (
        "  static comes from beat_schedule: the next beat start puts that definition back" in lines
    )


def test_a_quarantined_entry_as_the_file_wants_it_is_written_again() -> None:
    every = schedule(timedelta(seconds=60))
    plan = make_plan(
        {"q": wanted("q", "tasks.q", every)},
        [stored("q", "tasks.q", every, state=EntryState.QUARANTINED, reason="why")],
        prune=False,
    )
    (change,) = plan.change
    assert (change.fields, change.quarantined, change.unreadable) == ((), True, False)


def test_schedules_match_on_what_they_mean() -> None:
    assert same_schedule(schedule(timedelta(seconds=60)), schedule(timedelta(minutes=1)))
    assert not same_schedule(schedule(timedelta(seconds=60)), schedule(60, relative=True))
    assert not same_schedule(schedule(timedelta(seconds=60)), schedule(timedelta(seconds=61)))
    assert same_schedule(crontab(minute="*/15"), parse_cron("0,15,30,45 * * * *"))
    assert not same_schedule(crontab(minute=0, hour=3), parse_cron("0 4 * * *"))
    paris = timezone(timedelta(hours=1))
    assert same_schedule(
        clocked(datetime(2030, 1, 1, 10, tzinfo=paris)), parse_once("2030-01-01T09:00:00Z")
    )
    assert not same_schedule(parse_cron("0 * * * *"), schedule(timedelta(hours=1)))


def test_the_plan_as_json_and_as_lines(tmp_path: Path) -> None:
    file = read_entries(written(tmp_path, "s.toml", TOML))
    plan = make_plan(
        file, [stored("old", "tasks.old", schedule(timedelta(seconds=60)))], prune=True
    )
    data = plan.to_json()
    assert json.loads(json.dumps(data)) == data
    assert [entry["name"] for entry in data["add"]] == ["every-30s", "launch", "nightly"]
    assert data["add"][0] == {
        "name": "every-30s",
        "task": "tasks.add",
        "schedule": "every 30 seconds",
        "args": [1, 2],
        "kwargs": {},
        "options": {},
        "enabled": True,
        "policy": {},
    }
    assert data["remove"] == ["old"]
    assert plan_lines(plan) == [
        ("add", "+ every-30s: tasks.add, every 30 seconds, args [1, 2]"),
        ("add", "+ launch: tasks.launch, once at 2030-01-01 09:00:00 UTC, disabled"),
        ("add", '+ nightly: tasks.report, at 04:30 every day (crontab 30 4 * * *), kwargs '
                '{"region": "eu"}, options {"queue": "reports"}'),
        ("remove", "- old"),
    ]  # fmt: skip
    assert summary(plan, dry_run=True) == (
        "dry run: 3 to add, 0 to change, 1 to remove, 0 unchanged; nothing written"
    )
    assert summary(plan, dry_run=False) == "applied: 3 added, 0 changed, 1 removed, 0 unchanged"
