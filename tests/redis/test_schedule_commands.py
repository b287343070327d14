"""The schedule commands, run as operators run them: the installed ``redbeat`` and
``celery -A proj redbeat`` executables as subprocesses against a real server, reading their
``--json`` output and exit codes."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from redbeat_test_support import COMMANDS_PROJ, ok, on_a_terminal, run

BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def redbeat_server_kind() -> str:
    """One server kind: the commands send what ``Schedule`` sends, which runs on every kind
    (tests/redis/test_schedule_api.py); each command here starts a Python process."""
    return "valkey"


@pytest.fixture
def workdir(tmp_path: Path, redbeat_url: str) -> Path:
    (tmp_path / "proj.py").write_text(COMMANDS_PROJ)
    return tmp_path


def test_add_list_show_next_with_an_app(workdir: Path, redbeat_url: str) -> None:
    ok(run(workdir, redbeat_url, "redbeat", "-A", "proj", "add", "job", "tasks.add",
           "--every", "30", "--args", "[1, 2]"))  # fmt: skip
    ok(run(workdir, redbeat_url, "redbeat", "-A", "proj", "add", "nightly", "tasks.report",
           "--cron", "0 3 * * *"))  # fmt: skip
    listed = json.loads(ok(run(workdir, redbeat_url, "redbeat", "-A", "proj", "list", "--json")))
    assert [(e["name"], e["state"], e["schedule"]) for e in listed] == [
        ("job", "scheduled", "every 30 seconds"),
        ("nightly", "scheduled", "at 03:00 every day (crontab 0 3 * * *)"),
    ]
    assert listed[0]["args"] == [1, 2]
    shown = json.loads(ok(run(workdir, redbeat_url, "redbeat", "-A", "proj", "show", "job",
                              "--json")))  # fmt: skip
    assert shown["key"] == "redbeat:job"
    runs = json.loads(ok(run(workdir, redbeat_url, "redbeat", "-A", "proj", "next", "nightly",
                             "-n", "3", "--json")))  # fmt: skip
    assert [r[11:] for r in runs] == ["02:00:00+00:00"] * 3  # 03:00 in Paris, in winter
    piped = ok(run(workdir, redbeat_url, "redbeat", "-A", "proj", "list"))
    assert piped.splitlines()[0].split("\t")[:4] == ["job", "tasks.add", "every 30 seconds",
                                                       "scheduled"]  # fmt: skip


def test_the_same_commands_inside_celery(workdir: Path, redbeat_url: str) -> None:
    ok(run(workdir, redbeat_url, "celery", "-A", "proj", "redbeat", "add", "job", "tasks.add",
           "--every", "60"))  # fmt: skip
    listed = json.loads(ok(run(workdir, redbeat_url, "celery", "-A", "proj", "redbeat", "list",
                               "--json")))  # fmt: skip
    assert [e["name"] for e in listed] == ["job"]
    assert "list" in ok(run(workdir, redbeat_url, "celery", "redbeat", "--help"))


def test_url_without_an_app(workdir: Path, redbeat_url: str) -> None:
    ok(run(workdir, redbeat_url, "redbeat", "--url", redbeat_url, "add", "job", "tasks.add",
           "--every", "30"))  # fmt: skip
    client = redis.Redis.from_url(redbeat_url, decode_responses=True)
    try:
        assert client.zscore("redbeat::schedule", "redbeat:job") is not None
    finally:
        client.close()


def test_enable_disable_edit_delete(workdir: Path, redbeat_url: str) -> None:
    base = ("redbeat", "-A", "proj")
    ok(run(workdir, redbeat_url, *base, "add", "job", "tasks.add", "--every", "30"))
    assert ok(run(workdir, redbeat_url, *base, "disable", "job")) == "disabled job\n"
    listed = json.loads(ok(run(workdir, redbeat_url, *base, "list", "--state", "disabled",
                               "--json")))  # fmt: skip
    assert [e["name"] for e in listed] == ["job"]
    ok(run(workdir, redbeat_url, *base, "enable", "job"))
    edited = json.loads(ok(run(workdir, redbeat_url, *base, "edit", "job", "--every", "300",
                               "--kwargs", '{"x": 1}', "--json")))  # fmt: skip
    assert (edited["schedule"], edited["kwargs"]) == ("every 5 minutes", {"x": 1})
    ok(run(workdir, redbeat_url, *base, "delete", "job", "--yes"))
    assert json.loads(ok(run(workdir, redbeat_url, *base, "list", "--json"))) == []


def test_export_then_import(workdir: Path, redbeat_url: str) -> None:
    base = ("redbeat", "-A", "proj")
    ok(run(workdir, redbeat_url, *base, "add", "a", "tasks.a", "--every", "30"))
    ok(run(workdir, redbeat_url, *base, "add", "b", "tasks.b", "--cron", "*/5 * * * *"))
    exported = ok(run(workdir, redbeat_url, *base, "export"))
    other = ("redbeat", "--url", redbeat_url.rsplit("/", 1)[0] + "/3")
    assert ok(run(workdir, redbeat_url, *other, "import", "-", stdin=exported)) == (
        "imported 2 entries\n"
    )
    listed = json.loads(ok(run(workdir, redbeat_url, *other, "list", "--json")))
    assert [(e["name"], e["schedule"]) for e in listed] == [
        ("a", "every 30 seconds"),
        ("b", "crontab */5 * * * *"),
    ]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (("show", "nope"), 1, "no entry named 'nope' is stored"),
        (("add", "bad", "tasks.x", "--every", "0"), 1, "entry 'bad': invalid schedule"),
        (("add", "x", "tasks.x"), 2, "say when it runs"),
        (("add", "x", "tasks.x", "--cron", "0 3 *"), 2, "five fields"),
        (("add", "x", "tasks.x", "--cron", "70 * * * *"), 2, "Invalid end range: 70 > 59"),
        (("add", "x", "tasks.x", "--at", "tomorrow"), 2, "an ISO 8601 time"),
        (("add", "x", "tasks.x", "--every", "5", "--args", "{}"), 2, "a JSON list"),
        (("edit", "x"), 2, "nothing to change"),
        (("import", "-"), 2, "not JSON"),
    ],
)
def test_problems_and_usage_errors_say_what_to_do(
    workdir: Path, redbeat_url: str, argv: tuple[str, ...], code: int, message: str
) -> None:
    done = run(workdir, redbeat_url, "redbeat", "-A", "proj", *argv, stdin="not json")
    assert done.returncode == code
    assert message in done.stderr


def test_no_app_and_no_url_is_a_usage_error(workdir: Path, redbeat_url: str) -> None:
    done = run(workdir, redbeat_url, "redbeat", "list")
    assert done.returncode == 2
    assert "--app" in done.stderr


def test_quarantine_lists_and_restores(workdir: Path, redbeat_url: str) -> None:
    base = ("redbeat", "-A", "proj")
    ok(run(workdir, redbeat_url, *base, "add", "job", "tasks.add", "--every", "30"))
    client = redis.Redis.from_url(redbeat_url, decode_responses=True)
    try:
        client.hset("redbeat::quarantine", "redbeat:job", "a test put it here")
        found = json.loads(ok(run(workdir, redbeat_url, *base, "quarantine", "--json")))
        assert found == {"job": "a test put it here"}
        ok(run(workdir, redbeat_url, *base, "quarantine", "restore", "job"))
        assert not client.exists("redbeat::quarantine")
    finally:
        client.close()


def test_an_entry_whose_key_is_not_utf8_is_listed_and_deleted(
    workdir: Path, redbeat_url: str
) -> None:
    """Another program left a key that is not UTF-8. Its name is kept as Python keeps such
    file names (``surrogateescape``: the byte 0xff is ``\\udcff``), printed escaped as JSON
    and ``repr`` show it, never crashes a listing, and is taken back on the command line as
    the raw bytes (``$'bad\\xff'`` in bash) to act on that key."""
    base = ("redbeat", "-A", "proj")
    ok(run(workdir, redbeat_url, *base, "add", "job", "tasks.add", "--every", "30"))
    client = redis.Redis.from_url(redbeat_url)
    try:
        client.hset(b"redbeat:bad\xff", b"definition", b'{"task": "t", "schedule": 5}')
        client.hset(b"redbeat::quarantine", b"redbeat:bad\xff", b"not UTF-8")
        listed = json.loads(ok(run(workdir, redbeat_url, *base, "list", "--json")))
        assert [(e["name"], e["state"]) for e in listed] == [
            ("bad\udcff", "quarantined"),
            ("job", "scheduled"),
        ]
        assert "bad\\udcff\t-\t(cannot be read)\tquarantined (not UTF-8)" in ok(
            run(workdir, redbeat_url, *base, "list")
        )
        assert "bad\\udcff" in ok(run(workdir, redbeat_url, *base, "quarantine"))
        ok(run(workdir, redbeat_url, *base, "delete", "bad\udcff", "--yes"))
        assert not client.exists(b"redbeat:bad\xff")
        assert not client.exists(b"redbeat::quarantine")
    finally:
        client.close()


def test_history_shows_what_a_beat_ran(workdir: Path, redbeat_url: str, make_app: Any) -> None:
    """A real tick runs two entries; `redbeat history` shows them newest first, as JSON and
    as text, and an unknown name is an error."""
    from datetime import UTC, datetime, timedelta

    from celery.schedules import schedule

    from redbeat import RedBeatScheduler, RedBeatSchedulerEntry

    app = make_app()
    for name in ("job", "other"):
        entry = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(30), app=app)
        entry.last_run_at = datetime.now(UTC) - timedelta(seconds=45)
        entry.save()
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    base = ("redbeat", "-A", "proj")
    records = json.loads(ok(run(workdir, redbeat_url, *base, "history", "job", "--json")))
    assert [(r["name"], r["outcome"], r["epoch"]) for r in records] == [("job", "sent", 1)]
    assert records[0]["task_id"]
    every = json.loads(ok(run(workdir, redbeat_url, *base, "history", "-n", "1", "--json")))
    assert len(every) == 1
    text = ok(run(workdir, redbeat_url, *base, "history"))
    assert "\tjob\tsent\t" in text
    assert "\tother\tsent\t" in text
    missing = run(workdir, redbeat_url, *base, "history", "nope")
    assert missing.returncode == 1
    assert "nope" in missing.stderr


def test_run_asks_the_leader_for_one_run(workdir: Path, redbeat_url: str, make_app: Any) -> None:
    from redbeat import RedBeatScheduler

    base = ("redbeat", "-A", "proj")
    ok(run(workdir, redbeat_url, *base, "add", "nightly", "tasks.report", "--cron", "0 3 * * *"))
    said = ok(run(workdir, redbeat_url, *base, "run", "nightly", "--by", "ops@bastion"))
    assert said == "asked the leading beat to run nightly once, at its next tick\n"
    scheduler = RedBeatScheduler(app=make_app())
    try:
        scheduler.tick()
    finally:
        scheduler.close()
    (record,) = json.loads(ok(run(workdir, redbeat_url, *base, "history", "nightly", "--json")))
    assert (record["outcome"], record["manual"], record["reason"]) == (
        "sent",
        True,
        "run now, asked by ops@bastion",
    )
    shown = json.loads(ok(run(workdir, redbeat_url, *base, "show", "nightly", "--json")))
    assert shown["total_run_count"] == 0  # a manual run is not one of the schedule's
    missing = run(workdir, redbeat_url, *base, "run", "nope")
    assert (missing.returncode, "nope" in missing.stderr) == (1, True)


def test_audit_lists_who_changed_what(workdir: Path, redbeat_url: str) -> None:
    base = ("redbeat", "-A", "proj")
    ok(run(workdir, redbeat_url, *base, "add", "job", "tasks.add", "--every", "30"))
    ok(run(workdir, redbeat_url, *base, "pause", "job", "--reason", "frozen", "--by", "ops"))
    records = json.loads(ok(run(workdir, redbeat_url, *base, "audit", "--json")))
    assert [(r["action"], r["names"], r["detail"]) for r in records] == [
        ("pause", ["job"], "frozen"),
        ("add", ["job"], None),
    ]
    text = ok(run(workdir, redbeat_url, *base, "audit", "-n", "1"))
    assert text.count("\n") == 1
    assert "\tpause\tjob\tfrozen\n" in text


def test_help_lists_every_schedule_command(workdir: Path, redbeat_url: str) -> Any:
    text = ok(run(workdir, redbeat_url, "redbeat", "--help"))
    for command in ("list", "show", "next", "add", "edit", "enable", "disable", "delete",
                    "history", "run", "audit", "quarantine", "export", "import", "apply",
                    "demo", "web"):  # fmt: skip
        assert f"  {command} " in text


def test_lock_names_the_leader_and_says_when_there_is_none(
    workdir: Path, redbeat_url: str, make_app: Any
) -> None:
    from redbeat import RedBeatScheduler

    base = ("redbeat", "-A", "proj")
    none = run(workdir, redbeat_url, *base, "lock", "--json")
    assert none.returncode == 1
    assert json.loads(none.stdout)["held"] is False
    leader = RedBeatScheduler(app=make_app())
    try:
        leader.tick()
        status = json.loads(ok(run(workdir, redbeat_url, *base, "lock", "--json")))
        assert status["held"] is True
        assert status["holder"] == f"{socket.gethostname()}:{os.getpid()}"
        assert status["holder_epoch"] == status["epoch"] == 1
        text = ok(run(workdir, redbeat_url, *base, "lock"))
        assert text.startswith(f"leader:   {status['holder']} (since ")
    finally:
        leader.close()


def test_doctor_exits_1_on_a_problem_and_lists_every_check(workdir: Path, redbeat_url: str) -> None:
    done = run(workdir, redbeat_url, "redbeat", "-A", "proj", "doctor", "--json")
    assert done.returncode == 1  # no beat holds the lock
    found = {f["check"]: f["verdict"] for f in json.loads(done.stdout)}
    assert found["lock"] == "problem"
    assert found["server"] == "ok"
    assert set(found) >= {"eviction", "persistence", "clock", "acl", "quarantine", "statics"}
    text = run(workdir, redbeat_url, "redbeat", "-A", "proj", "doctor").stdout
    assert "PROBLEM  lock" in text
    assert "fix: start a beat" in text


def test_pause_and_resume(workdir: Path, redbeat_url: str) -> None:
    base = ("redbeat", "-A", "proj")
    ok(run(workdir, redbeat_url, *base, "add", "job", "tasks.add", "--every", "30"))
    assert ok(run(workdir, redbeat_url, *base, "pause", "job", "--reason", "deploy", "--by",
                  "me@here")) == "paused job (me@here: deploy)\n"  # fmt: skip
    (shown,) = json.loads(ok(run(workdir, redbeat_url, *base, "list", "--state", "paused",
                                 "--json")))  # fmt: skip
    assert (shown["reason"], shown["paused_by"]) == ("deploy", "me@here")
    assert ok(run(workdir, redbeat_url, *base, "resume", "job")).startswith("resumed job: next run")
    missing = run(workdir, redbeat_url, *base, "pause", "job")
    assert missing.returncode == 2  # --reason is required
    assert "--reason" in missing.stderr


def test_a_big_import_shows_a_progress_bar_on_a_terminal_only(
    workdir: Path, redbeat_url: str
) -> None:
    items = [
        {"name": f"e{i:04d}", "definition": {"task": "tasks.add", "schedule": 30}}
        for i in range(2500)
    ]
    (workdir / "big.json").write_text(json.dumps(items))
    env = dict(os.environ, REDBEAT_TEST_URL=redbeat_url, PYTHONPATH=str(workdir))
    shown = on_a_terminal(
        [str(BIN / "redbeat"), "-A", "proj", "import", "big.json"], workdir, env, 120
    )
    text = "\n".join(shown)
    assert "importing" in text
    assert "/2500" in text
    assert shown[-1].endswith("imported 2500 entries")
    piped = run(workdir, redbeat_url, "redbeat", "-A", "proj", "import", "big.json")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "imported 2500 entries\n", "")
