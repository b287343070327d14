"""``redbeat doctor``'s checks against real servers configured to fail each one."""

from __future__ import annotations

from typing import Any

import pytest
from celery.schedules import schedule

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.doctor import Finding, Verdict, run_doctor
from redbeat_redis import acl
from redbeat_redis.testing.servers import free_port


def verdicts(findings: list[Finding]) -> dict[str, Verdict]:
    return {finding.check: finding.verdict for finding in findings}


def one(findings: list[Finding], check: str) -> Finding:
    (found,) = [finding for finding in findings if finding.check == check]
    return found


def test_a_healthy_setup(make_app: Any, redbeat_server_factory: Any) -> None:
    server = redbeat_server_factory(extra_args=["--appendonly", "yes"])
    app = make_app(redbeat_url=server.url)
    leader = RedBeatScheduler(app=app)
    try:
        leader.tick()
        findings = run_doctor(app)
    finally:
        leader.close()
    assert verdicts(findings) == {
        "server": Verdict.OK,
        "eviction": Verdict.OK,
        "persistence": Verdict.OK,
        "clock": Verdict.OK,
        "acl": Verdict.OK,
        "lock": Verdict.OK,
        "quarantine": Verdict.OK,
        "statics": Verdict.OK,
        "tasks": Verdict.OK,
    }
    assert "AOF is on" in one(findings, "persistence").detail
    assert "held by " in one(findings, "lock").detail


@pytest.mark.parametrize(
    ("policy", "verdict"),
    [("allkeys-lru", Verdict.PROBLEM), ("volatile-lru", Verdict.WARNING)],
)
def test_an_eviction_policy_that_can_drop_keys(
    make_app: Any, redbeat_server_factory: Any, policy: str, verdict: Verdict
) -> None:
    server = redbeat_server_factory(
        extra_args=["--maxmemory", "100mb", "--maxmemory-policy", policy]
    )
    found = one(run_doctor(make_app(redbeat_url=server.url)), "eviction")
    assert found.verdict is verdict
    assert "noeviction" in (found.fix or "")


def test_no_persistence_and_no_leader(make_app: Any, redbeat_server_factory: Any) -> None:
    server = redbeat_server_factory(extra_args=["--save", ""])
    findings = run_doctor(make_app(redbeat_url=server.url))
    assert one(findings, "persistence").verdict is Verdict.WARNING
    assert "restart loses every entry" in one(findings, "persistence").detail
    lock = one(findings, "lock")
    assert lock.verdict is Verdict.PROBLEM
    assert "celery -A proj beat -S redbeat.RedBeatScheduler" in (lock.fix or "")


def test_a_user_missing_a_command_is_told_what_to_grant(
    make_app: Any, redbeat_server_factory: Any
) -> None:
    server = redbeat_server_factory()
    rule = acl.rule("beat", "entries", "inspection").replace(" +zremrangebyscore", "")
    server.call("ACL", "SETUSER", "beat", "reset", "on", ">pw", *rule.split(), "+acl|whoami",
                "+acl|dryrun", "+info", "+config|get")  # fmt: skip
    app = make_app(redbeat_url=f"redis://beat:pw@127.0.0.1:{server.port}/0")
    found = one(run_doctor(app), "acl")
    assert found.verdict is Verdict.PROBLEM
    assert found.fix == "ACL SETUSER beat +zremrangebyscore"
    # The lock's liveness channels: a channel refused names the channels, not the commands.
    rule = acl.rule("beat", "entries", "inspection").replace(" &redbeat:*", "")
    server.call("ACL", "SETUSER", "beat", "reset", "on", ">pw", *rule.split(), "+acl|whoami",
                "+acl|dryrun", "+info", "+config|get")  # fmt: skip
    found = one(run_doctor(app), "acl")
    assert found.verdict is Verdict.PROBLEM
    assert found.fix == "ACL SETUSER beat &redbeat::lock:*"
    assert "liveness" in found.detail


def test_a_user_that_cannot_look_is_told_how_to_let_doctor_check(
    make_app: Any, redbeat_server_factory: Any
) -> None:
    server = redbeat_server_factory()
    rule = acl.rule("beat", "entries", "inspection")
    server.call("ACL", "SETUSER", "beat", "reset", "on", ">pw", *rule.split())
    findings = run_doctor(make_app(redbeat_url=f"redis://beat:pw@127.0.0.1:{server.port}/0"))
    assert one(findings, "server").verdict is Verdict.WARNING
    assert "+info" in (one(findings, "server").fix or "")
    assert one(findings, "acl").verdict is Verdict.WARNING
    assert one(findings, "lock").verdict is Verdict.PROBLEM  # the rest still ran


def test_quarantine_stale_statics_and_unknown_tasks(make_app: Any, redbeat_url: str) -> None:
    app = make_app(beat_schedule={"kept": {"task": "tasks.kept", "schedule": 60}})
    leader = RedBeatScheduler(app=app)
    try:
        leader.tick()
    finally:
        leader.close()
    RedBeatSchedulerEntry("typo", "tasks.nope", schedule(60), app=app).save()
    store = leader.store
    store.set_statics(["kept", "removed-from-config"])
    store.commit(None, (), [_quarantine("typo")])
    findings = run_doctor(app)
    assert one(findings, "quarantine").verdict is Verdict.WARNING
    assert "typo" in one(findings, "quarantine").detail
    assert "removed-from-config" in one(findings, "statics").detail
    tasks = one(findings, "tasks")
    assert tasks.verdict is Verdict.WARNING
    assert "tasks.kept" in tasks.detail  # this app registers no task at all


def _quarantine(name: str) -> Any:
    from redbeat_core.typing import Quarantine

    return Quarantine(name=name, reason="a test put it here")


def test_an_unreachable_server_is_the_one_problem(make_app: Any) -> None:
    app = make_app(
        redbeat_url=f"redis://127.0.0.1:{free_port()}/0",
        redbeat_redis_options={"retry_period": 0, "socket_connect_timeout": 1},
    )
    findings = run_doctor(app)
    assert [(f.check, f.verdict) for f in findings] == [("connection", Verdict.PROBLEM)]
    assert "start the server" in (findings[0].fix or "")


def test_policies_that_cannot_work_as_written(make_app: Any, client: Any) -> None:
    """An entry naming a calendar nobody declares any more runs through its blackout; an
    overlap policy with no worker recording runs is published as 'allow'."""
    from redbeat import Schedule
    from redbeat_core.runtime import get_runtime

    app = make_app(redbeat_calendars={"nightly": {"cron": "* 2-3 * * *"}})
    Schedule(app).set_calendar("freeze", {"cron": "* * 24-26 12 *"})
    for name, policy in (("frozen", {"blackouts": ["freeze"]}), ("single", {"overlap": "skip"})):
        RedBeatSchedulerEntry(name, "tasks.t", schedule(60), app=app, policy=policy).save()
    healthy = run_doctor(app)
    assert "calendars" not in verdicts(healthy)
    assert one(healthy, "overlap").verdict is Verdict.WARNING
    assert "no worker records runs" in one(healthy, "overlap").detail
    get_runtime(app).store.tracker_alive("worker-1", 60)  # type: ignore[attr-defined]
    client.hdel("redbeat::calendars", "freeze")  # deleted behind the entry's back
    findings = run_doctor(app)
    assert "overlap" not in verdicts(findings)
    calendars = one(findings, "calendars")
    assert calendars.verdict is Verdict.PROBLEM
    assert calendars.detail.endswith("frozen (freeze)")
