"""The ACL rules of the security guide, on real servers: each feature works under exactly its
rule, needs every command of it (the rule minus any one command fails, and the failure names
that command), and a refusal never stops a running beat.

The ACL users are created in the tests, on private servers; the apps log in as them, while
the test prepares data as the default user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from acl_features import (
    Outcome,
    run_beat,
    run_calendars,
    run_entries,
    run_inspection,
    run_overlap,
    run_tracking,
    seed_for_a_beat,
)
from celery import Celery
from celery.schedules import schedule
from redbeat_test_support import ago, recording_publishes, wait_for

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_core.exceptions import StorePermissionError
from redbeat_core.testing.apps import celery_apps
from redbeat_redis import acl, scripts
from redbeat_redis.testing.servers import ServerProcess

PASSWORD = "acl-test-pw"
Feature = Callable[..., Outcome]
RUNS: dict[str, Feature] = {"beat": run_beat, "entries": run_entries, "inspection": run_inspection}


def grant(server: ServerProcess, rule: str, user: str = "beat") -> None:
    """Give ``user`` exactly ``rule`` (``reset`` drops whatever it had)."""
    server.call("ACL", "SETUSER", user, "reset", "on", f">{PASSWORD}", *rule.split())


@pytest.fixture
def server(redbeat_server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return redbeat_server_factory()


@pytest.fixture
def apps(server: ServerProcess) -> Iterator[Callable[..., Celery]]:
    """Apps logged in as the ACL user ``beat`` (database 0 unless ``db`` is given)."""
    with celery_apps(f"redis://beat:{PASSWORD}@127.0.0.1:{server.port}/0", name="acl") as make:

        def make_app(db: int = 0, **conf: Any) -> Celery:
            url = f"redis://beat:{PASSWORD}@127.0.0.1:{server.port}/{db}"
            return make(redbeat_redis_url=url, beat_max_loop_interval=5, **conf)

        yield make_app


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[Callable[[], Celery]]:
    """Prepare a run as the default user: empty data and script cache, the beat's seed."""
    with celery_apps(server.url, name="acl-admin") as make:

        def reset(feature: str = "", db: int = 0) -> Celery:
            server.call("FLUSHALL")
            server.call("SCRIPT", "FLUSH")  # every run loads its scripts: SCRIPT LOAD is needed
            app = make(redbeat_redis_url=f"{server.url[:-2]}/{db}")
            if feature == "beat":
                seed_for_a_beat(app)
            return app

        yield reset


def rule_items(feature: str) -> list[str]:
    return acl.rule(feature).split()


@pytest.mark.parametrize("feature", ["beat", "entries", "inspection"])
def test_each_feature_works_under_exactly_its_rule(
    feature: str, server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    grant(server, acl.rule(feature))
    outcome = RUNS[feature](apps, admin(feature))
    assert outcome.fine, outcome.text  # worked, and nothing to warn about


@pytest.mark.parametrize("feature", ["beat", "entries", "inspection"])
def test_every_command_of_a_rule_is_needed_and_its_refusal_names_it(
    feature: str, server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    items = rule_items(feature)
    assert items[0] == "~redbeat:*"
    for item in items:
        grant(server, " ".join(i for i in items if i != item))
        outcome = RUNS[feature](apps, admin(feature))
        assert not outcome.fine, f"{feature} works without {item}: drop it from the rule"
        # Keys by the prefix setting; channels by the lock key they are under.
        named = {"~": "~<redbeat_key_prefix>*", "&": "&redbeat::lock:*"}.get(item[0], item)
        assert named in outcome.text, f"without {item}:\n{outcome.text}"
        assert "StorePermissionError" in outcome.text or "ACL SETUSER beat" in outcome.text


def test_overlap_tracking_and_calendars_work_under_their_rules_and_need_each_command(
    server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    """The beat's rule plus the overlap rule reserves runs; the run-tracking rule is what a
    worker needs; the calendars rule stores calendars. Each command they add is needed (the
    beat's own are tested above)."""
    cases = (
        (
            run_overlap,
            ("beat", "overlap"),
            set(acl.FEATURES["overlap"]) - set(acl.FEATURES["beat"]),
        ),
        (run_tracking, ("run_tracking",), set(acl.FEATURES["run_tracking"])),
        (run_calendars, ("calendars",), set(acl.FEATURES["calendars"])),
    )
    for run, features, needed in cases:
        items = acl.rule(*features).split()
        grant(server, " ".join(items))
        outcome = run(apps, admin())
        assert outcome.fine, outcome.text
        for command in sorted(needed):
            grant(server, " ".join(i for i in items if i != f"+{command}"))
            outcome = run(apps, admin())
            assert not outcome.fine, f"{features} work without {command}: drop it from the rule"
            assert f"+{command}" in outcome.text, f"without {command}:\n{outcome.text}"


def test_the_category_rule_of_the_guide_covers_the_beat_and_the_entries(
    server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    grant(server, acl.category_rule())
    for feature in ("beat", "entries", "inspection"):
        outcome = RUNS[feature](apps, admin(feature))
        assert outcome.fine, outcome.text


def test_a_database_other_than_0_needs_select(
    server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    grant(server, acl.rule("beat"))
    refused = run_beat(lambda **conf: apps(db=1, **conf), admin("beat", db=1))
    assert not refused.worked
    assert "ACL SETUSER beat +select" in refused.text
    grant(server, acl.rule("beat", "database"))
    outcome = run_beat(lambda **conf: apps(db=1, **conf), admin("beat", db=1))
    assert outcome.fine, outcome.text


def test_the_entry_api_raises_a_permission_error_naming_what_to_grant(
    server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    grant(server, acl.rule("entries").replace(" +zrank", ""))
    admin()
    app = apps()
    entry = RedBeatSchedulerEntry("web", "tasks.web", schedule(60), app=app).save()
    with pytest.raises(StorePermissionError) as caught:
        _ = entry.rank
    assert caught.value.missing == "+zrank"
    assert "Grant it: ACL SETUSER beat +zrank" in str(caught.value)


def test_a_permission_taken_away_never_stops_a_running_beat(
    server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery], caplog: Any
) -> None:
    """The beat keeps ticking (no exception reaches Celery's loop), says once what to grant,
    and schedules again as soon as it is granted."""
    grant(server, acl.rule("beat"))
    admin()
    app = apps(redbeat_lock_poll_interval=0.05)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
        entry = RedBeatSchedulerEntry("due", "tasks.due", schedule(60), app=app)
        entry.last_run_at = ago(120)
        grant(server, acl.rule("beat").replace(" +time", ""))
        entry.save()
        caplog.set_level(logging.WARNING)
        with recording_publishes() as published:
            for _ in range(5):
                assert scheduler.tick() <= 5  # returns: the loop goes on
            refused = [r for r in caplog.records if "ACL SETUSER beat +time" in r.getMessage()]
            assert len(refused) == 1, caplog.text  # said once
            assert published.tasks == []
            grant(server, acl.rule("beat"))
            wait_for(lambda: (scheduler.tick(), published.tasks)[1] != [], 10, "a publish")
        assert published.tasks == ["tasks.due"]
    finally:
        scheduler.close()


@pytest.fixture
def replica(
    server: ServerProcess, redbeat_server_factory: Callable[..., ServerProcess]
) -> ServerProcess:
    """A replica of ``server``, in sync (its offset caught up), so WAIT has one to count."""
    replica = redbeat_server_factory(extra_args=("--replicaof", "127.0.0.1", str(server.port)))

    def synced() -> bool:
        info = replica.call("INFO", "replication")
        return isinstance(info, bytes) and b"master_link_status:up" in info

    wait_for(synced, 20, "the replica to sync")
    return replica


@pytest.mark.usefixtures("replica")
def test_replica_acks_need_wait_and_a_refused_wait_never_stops_the_beat(
    server: ServerProcess, apps: Callable[..., Celery], admin: Callable[..., Celery]
) -> None:
    """The report of #16: with the documented rule and no +wait, the first busy tick raised
    NoPermissionError after its commit and the beat exited. Now it publishes, and says once
    what to grant; with +wait, replicas confirm each commit and nothing is said."""
    conf = {"redbeat_replica_acks": 1, "redbeat_replica_ack_timeout": 1.0}
    grant(server, acl.rule("beat"))
    without = run_beat(apps, admin("beat"), **conf)
    assert without.worked, without.text  # it published, kept its lock, quarantined...
    assert len(without.shown) == 1, without.text  # ...and said one thing, once:
    assert "refused WAIT" in without.shown[0]
    assert "ACL SETUSER beat +wait" in without.shown[0]

    grant(server, acl.rule("beat", "replica_acks"))
    outcome = run_beat(apps, admin("beat"), **conf)
    assert outcome.fine, outcome.text  # no refusal, and the replica confirmed every commit


def test_the_rules_cover_every_command_the_scripts_send() -> None:
    """A command added to a script must be added to the rules (and the guide): the tests
    above then show which feature needs it."""
    sent = {c for name in scripts.SCRIPT_NAMES for c in acl.script_commands(scripts.source(name))}
    assert "hsetnx" in sent  # found in "keep_meta and 'HSETNX' or 'HSET'" too
    assert sent <= acl.all_commands(["beat", "entries", "overlap", "run_tracking"])
