"""Moving a celery-redbeat schedule (prefix ``redbeat:``, keys spread over the cluster's slots)
to the single-slot ``{redbeat}:`` prefix with ``redbeat_cluster.migrate.copy_schedule``, and a
RedBeat beat reading and running it afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.signals import before_task_publish
from redis.cluster import RedisCluster

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat_cluster.migrate import MigrationError, MigrationReport, copy_schedule
from redbeat_redis.testing.cluster import ClusterTopology, key_slot

GOLDEN = Path(__file__).parents[1] / "core" / "data" / "celery_redbeat_golden.json"


def celery_redbeat_layout(client: RedisCluster) -> list[str]:
    """Entries as celery-redbeat 2.4 writes them (whole-second scores), one command at a time:
    on a cluster its keys live in many slots."""
    cases = [c for c in json.loads(GOLDEN.read_text()) if c["case"].startswith("interval")][:3]
    names = []
    for case in cases:
        name = json.loads(case["definition_json"])["name"]
        key = f"redbeat:{name}"
        client.hset(key, mapping={"definition": case["definition_json"], "meta": case["meta_json"]})
        client.zadd("redbeat::schedule", {key: 1_714_564_830})
        names.append(name)
    client.sadd("redbeat::statics", names[0])
    client.set("redbeat::lock", "celery-redbeat-token")
    return names


def test_copy_a_celery_redbeat_schedule_to_the_tagged_prefix(
    cluster: ClusterTopology, cluster_client: RedisCluster, make_cluster_app: Callable[..., Celery]
) -> None:
    names = celery_redbeat_layout(cluster_client)
    assert len({key_slot(f"redbeat:{n}") for n in names}) > 1  # really spread over slots
    report = copy_schedule(cluster_client, cluster_client)
    assert report == MigrationReport(
        entries=3, scheduled=3, statics=1, quarantined=0, skipped=("redbeat::lock",)
    )
    assert cluster_client.exists("redbeat::schedule")  # the source is left alone
    with pytest.raises(MigrationError, match="overwrite=True"):
        copy_schedule(cluster_client, cluster_client)
    assert copy_schedule(cluster_client, cluster_client, overwrite=True) == report

    definition = json.loads(cluster_client.hget(f"redbeat:{names[0]}", "definition"))
    app = make_cluster_app(
        beat_schedule={
            names[0]: {
                "task": definition["task"],
                "schedule": definition["schedule"]["every"],
                "args": definition["args"],
            }
        }
    )
    loaded = RedBeatSchedulerEntry.from_key(f"{{redbeat}}:{names[1]}", app=app)
    assert loaded.total_run_count == 3  # meta (last_run_at, run count) came along
    published: list[str] = []

    def record(headers: Any = None, **_: Any) -> None:
        published.append(headers["id"])

    before_task_publish.connect(record, weak=False)
    scheduler = RedBeatScheduler(app=app)
    try:
        scheduler.tick()
    finally:
        scheduler.close()
        before_task_publish.disconnect(record)
    assert len(published) == 3  # all three were overdue; the static one kept its meta
    assert cluster.keyslot("{redbeat}::schedule") == cluster.keyslot(f"{{redbeat}}:{names[2]}")
