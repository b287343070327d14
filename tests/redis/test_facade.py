"""The ``redbeat`` facade keeps celery-redbeat 2.4's API: names, paths and behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.schedules import crontab, schedule

import redbeat.schedulers
from redbeat import RedBeatSchedulerEntry
from redbeat.decoder import (
    RedBeatJSONDecoder,
    RedBeatJSONEncoder,
    from_timestamp,
    get_utcoffset_minutes,
    to_timestamp,
)
from redbeat.schedules import rrule


def test_readme_example_saves_an_entry_celery_redbeat_can_read(app: Any, redbeat_url: str) -> None:
    entry = RedBeatSchedulerEntry("name", "tasks.add", schedule(30), args=[1, 2], app=app).save()
    client = redis.Redis.from_url(redbeat_url, decode_responses=True)
    try:
        definition = json.loads(client.hget("redbeat:name", "definition"))
        assert definition == {
            "name": "name",
            "task": "tasks.add",
            "args": [1, 2],
            "kwargs": {},
            "options": {},
            "schedule": {"__type__": "interval", "every": 30.0, "relative": False},
            "enabled": True,
        }
        assert client.zscore("redbeat::schedule", "redbeat:name") == entry.score
    finally:
        client.close()


def test_entry_api(app: Any) -> None:
    entry = RedBeatSchedulerEntry("e", "tasks.x", crontab(minute="*/5"), kwargs={"a": 1}, app=app)
    assert entry.key == "redbeat:e" == RedBeatSchedulerEntry.generate_key(app, "e")
    assert entry.enabled
    entry.save()
    loaded = RedBeatSchedulerEntry.from_key("redbeat:e", app=app)
    assert (loaded.name, loaded.task, loaded.kwargs) == ("e", "tasks.x", {"a": 1})
    assert loaded.schedule == crontab(minute="*/5")
    definition = RedBeatSchedulerEntry.load_definition("redbeat:e", app=app)
    assert definition["task"] == "tasks.x"
    assert definition["schedule"] == crontab(minute="*/5")
    meta = RedBeatSchedulerEntry.load_meta("redbeat:e", app=app)
    assert isinstance(meta["last_run_at"], datetime)
    assert RedBeatSchedulerEntry.decode_meta(None) == {"last_run_at": None}
    assert loaded.rank == 0
    assert loaded.is_due()[0] is False

    earlier = datetime.now(UTC) - timedelta(hours=1)
    loaded.reschedule(earlier)
    assert RedBeatSchedulerEntry.load_meta("redbeat:e", app=app)["last_run_at"] == earlier
    assert loaded.is_due()[0] is True

    after = next(loaded)
    assert after.total_run_count == loaded.total_run_count + 1
    stored = RedBeatSchedulerEntry.from_key("redbeat:e", app=app)
    assert stored.total_run_count == after.total_run_count

    loaded.delete()
    assert loaded.rank is None
    with pytest.raises(KeyError) as info:
        RedBeatSchedulerEntry.from_key("redbeat:e", app=app)
    assert info.value.args == ("redbeat:e",)


def test_schedulers_module_api(make_app: Any, redbeat_url: str) -> None:
    app = make_app(redbeat_redis_options={"retry_period": 5})
    conf = redbeat.schedulers.ensure_conf(app)
    assert conf is app.redbeat_conf
    assert redbeat.schedulers.RedBeatConfig(app).schedule_key == "redbeat::schedule"
    client = redbeat.schedulers.get_redis(app)
    assert isinstance(client, redbeat.schedulers.RetryingConnection)
    assert client.ping()
    assert callable(redbeat.schedulers.acquire_distributed_beat_lock)


def test_a_client_assigned_to_the_app_is_used(make_app: Any, redbeat_url: str) -> None:
    app = make_app(redbeat_key_prefix="mine:")
    own = redis.Redis.from_url(redbeat_url, db=3, decode_responses=True)
    app.redbeat_redis = own
    try:
        RedBeatSchedulerEntry("x", "tasks.x", schedule(5), app=app).save()
        assert own.exists("mine:x")
        assert redbeat.schedulers.get_redis(app) is own
    finally:
        own.flushdb()
        own.close()


def test_decoder_classes_round_trip() -> None:
    value = {
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "every": schedule(timedelta(seconds=90)),
        "rule": rrule("DAILY", dtstart=datetime(2026, 1, 1, tzinfo=UTC), count=3),
    }
    text = json.dumps(value, cls=RedBeatJSONEncoder)
    back = json.loads(text, cls=RedBeatJSONDecoder)
    assert back["when"] == value["when"]
    assert back["every"].run_every == timedelta(seconds=90)
    assert back["rule"] == value["rule"]
    assert to_timestamp(datetime(1970, 1, 1, 0, 1, tzinfo=UTC)) == 60
    assert from_timestamp(60) == datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
    assert get_utcoffset_minutes(datetime(2026, 1, 1)) == 0


def test_importing_next_to_celery_redbeat_is_an_error_that_says_what_to_do(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "celery_redbeat-2.4.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: celery-redbeat\nVersion: 2.4.2\n")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import redbeat",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "ConflictingDistributionError" in done.stderr
    assert "pip uninstall celery-redbeat" in done.stderr
