"""The blackout example plugin (``examples/redbeat-blackout``), installed from its folder, on a
real server through the real scheduler.

It is the plugin the guide's walk-through builds: it declares its settings through
``redbeat_register_settings`` and decides about due runs through ``redbeat_decide_runs``. A run
of a matching entry that falls in a window is not published, is stored as skipped (the next
due time moves on, the run count does not) and is logged once with the plugin and the reason;
with ``postpone`` it is published once, at the window's end. Other entries, and every entry
outside the windows, run as usual. Bad settings stop start-up naming the setting and the
plugin; a misspelled key is warned about with the closest name. A real ``celery beat`` finds
the plugin through its entry point.

Windows are written as an operator writes them (``"22:00-06:00"``) in a fixed-offset time zone
chosen so that the wall clock reads a given time now (:func:`zone_where_now_is`), so each test
knows whether "now" is inside a window. Ticks are driven by calling ``tick()``; publishes go to
``memory://`` and are counted with Celery's ``before_task_publish`` signal. Waits are polls
with deadlines.

The plugin must be installed in the test environment (from the repository root; ``uv sync``
removes it, so install it again after a sync)::

    uv pip install --python .venv/bin/python ./examples/redbeat-blackout
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

INSTALL_LINE = "uv pip install --python .venv/bin/python ./examples/redbeat-blackout"
if importlib.util.find_spec("redbeat_blackout") is None:
    if os.environ.get("CI"):
        pytest.fail(f"redbeat-blackout is not installed; run: {INSTALL_LINE}", pytrace=False)
    pytest.skip(f"redbeat-blackout is not installed; run: {INSTALL_LINE}", allow_module_level=True)

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from celery.schedules import schedule  # noqa: E402
from redbeat_blackout import Blackout  # noqa: E402
from redbeat_test_support import Published, ago, recording_publishes, wait_for  # noqa: E402

from redbeat import RedBeatScheduler, RedBeatSchedulerEntry  # noqa: E402
from redbeat_core import ConfigurationError, RedBeatConfig  # noqa: E402
from redbeat_core.plugins import BLOCK_ENV, DISABLE_AUTOLOAD_ENV  # noqa: E402
from redbeat_core.runtime import get_runtime  # noqa: E402

SCHEDULE_KEY = "redbeat::schedule"
IMPORT_PATH = "redbeat_blackout.plugin"
ENTRY_POINT_PLUGIN = "redbeat-blackout:blackout"
FAST_LOCK = {"redbeat_lock_timeout": 2.0, "redbeat_lock_poll_interval": 0.1}


def zone_where_now_is(wall: str) -> timezone:
    """A fixed-offset time zone whose wall clock reads ``wall`` (``HH:MM[:SS[.f]]``) now, to
    the second."""
    hours, minutes, *seconds = wall.split(":")
    target = int(hours) * 3600 + int(minutes) * 60 + float(seconds[0] if seconds else 0)
    offset = (target - time.time() % 86_400) % 86_400  # Unix time counts 86 400 s a day
    if offset > 43_200:
        offset -= 86_400
    return timezone(timedelta(seconds=round(offset)))


def due_entry(app: Celery, name: str, every: float = 30) -> RedBeatSchedulerEntry:
    """An interval entry that last ran long enough ago to be due now."""
    item = RedBeatSchedulerEntry(name, f"tasks.{name}", schedule(every), app=app)
    item.last_run_at = ago(every * 2)
    return item.save()


def meta_of(client: Any, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(client.hget(f"redbeat:{name}", "meta"))
    return meta


def skip_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if f"the run of {name!r}" in r.getMessage() and r.name == "celery.beat"
    ]


@pytest.fixture
def published() -> Iterator[Published]:
    with recording_publishes() as record:
        yield record


@pytest.fixture
def autoloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin is found through its entry point, nothing blocked."""
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)


@pytest.fixture
def blackout_app(
    make_app: Callable[..., Celery], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Celery]:
    """Apps that load the plugin by its import path, and no other installed plugin."""
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")

    def make(**conf: Any) -> Celery:
        return make_app(redbeat_plugins=["redbeat_blackout.plugin"], **FAST_LOCK, **conf)

    return make


def run_ticks(app: Celery, ticks: int = 2) -> None:
    """Run a real scheduler for ``ticks`` ticks, then close it (releasing its lock)."""
    scheduler = RedBeatScheduler(app=app)
    try:
        for _ in range(ticks):
            scheduler.tick()
    finally:
        scheduler.close()


# ----------------------------------------------------------------------------- skip


def test_a_matching_run_in_a_window_is_skipped_and_stored_as_skipped(
    blackout_app: Callable[..., Celery],
    client: Any,
    published: Published,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = blackout_app(
        redbeat_blackout_windows=["22:00-06:00"],
        redbeat_blackout_entries=["maint-*"],
        redbeat_blackout_timezone=zone_where_now_is("23:00"),
    )
    due_entry(app, "maint-vacuum")
    due_entry(app, "report")
    before = meta_of(client, "maint-vacuum")
    with caplog.at_level(logging.INFO, "celery.beat"):
        run_ticks(app)  # the second tick finds nothing due: the schedule moved on

    assert published.tasks == ["tasks.report"]  # not matched: published as usual
    after = meta_of(client, "maint-vacuum")
    assert after["total_run_count"] == before["total_run_count"] == 0  # not counted
    assert after["last_run_at"] != before["last_run_at"]  # but the due time passed
    assert client.zscore(SCHEDULE_KEY, "redbeat:maint-vacuum") > time.time() + 25
    (line,) = skip_lines(caplog, "maint-vacuum")  # logged once, at INFO
    assert line.levelno == logging.INFO
    message = line.getMessage()
    assert message.startswith("beat: skipped the run of 'maint-vacuum'")
    assert "blackout window 22:00-06:00 (UTC" in message
    assert message.endswith("entries 'maint-*' (plugin redbeat_blackout.plugin)")


@pytest.mark.usefixtures("autoloaded")
def test_through_its_entry_point_the_skip_names_the_distribution(
    make_app: Callable[..., Celery], published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        redbeat_blackout_windows=["22:00-06:00"],
        redbeat_blackout_entries=["maint-*"],
        redbeat_blackout_timezone=zone_where_now_is("05:00"),
        **FAST_LOCK,
    )
    due_entry(app, "maint-vacuum")
    with caplog.at_level(logging.INFO, "celery.beat"):
        run_ticks(app, ticks=1)
    assert published.tasks == []
    (line,) = skip_lines(caplog, "maint-vacuum")
    assert line.getMessage().endswith(f"(plugin {ENTRY_POINT_PLUGIN})")


def test_outside_the_windows_everything_runs(
    blackout_app: Callable[..., Celery], client: Any, published: Published
) -> None:
    app = blackout_app(
        redbeat_blackout_windows=["22:00-06:00", "12:00-12:30"],
        redbeat_blackout_entries="maint-*, reindex-?",
        redbeat_blackout_timezone=zone_where_now_is("18:00"),
    )
    for name in ("maint-vacuum", "reindex-1", "report"):
        due_entry(app, name)
    run_ticks(app)
    assert sorted(published.tasks) == ["tasks.maint-vacuum", "tasks.reindex-1", "tasks.report"]
    assert meta_of(client, "maint-vacuum")["total_run_count"] == 1


@pytest.mark.parametrize(
    ("wall", "blacked_out"),
    [("23:30", True), ("00:30", True), ("22:30", False), ("01:30", False)],
)
def test_a_window_crossing_midnight(
    blackout_app: Callable[..., Celery], published: Published, wall: str, blacked_out: bool
) -> None:
    app = blackout_app(
        redbeat_blackout_windows="23:00-01:00",
        redbeat_blackout_entries="*",
        redbeat_blackout_timezone=zone_where_now_is(wall),
    )
    due_entry(app, "nightly")
    run_ticks(app, ticks=1)
    assert published.tasks == ([] if blacked_out else ["tasks.nightly"])


def test_windows_follow_a_named_time_zone_or_celerys(
    blackout_app: Callable[..., Celery], published: Published
) -> None:
    """An IANA name, and Celery's own ``timezone`` when the plugin's is not set. The window is
    the hour around now in Kolkata (UTC+05:30), which UTC's clock is far from."""
    kolkata = datetime.now(timezone(timedelta(hours=5, minutes=30)))
    window = f"{kolkata - timedelta(hours=1):%H:%M}-{kolkata + timedelta(hours=1):%H:%M}"
    zones = {"maint-named": "redbeat_blackout_timezone", "maint-celerys": "timezone"}
    for name, setting in zones.items():
        app = blackout_app(
            redbeat_blackout_windows=[window],
            redbeat_blackout_entries=["maint-*"],
            **{setting: "Asia/Kolkata"},
        )
        assert str(Blackout.from_settings(RedBeatConfig.from_app(app).settings).zone) == (
            "Asia/Kolkata"
        )
        due_entry(app, name)
        run_ticks(app, ticks=1)
    app = blackout_app(redbeat_blackout_windows=[window], redbeat_blackout_entries=["maint-*"])
    due_entry(app, "maint-utc")
    run_ticks(app, ticks=1)
    assert published.tasks == ["tasks.maint-utc"]  # in UTC, now is not in the window


# ----------------------------------------------------------------------------- postpone


def test_postpone_runs_once_at_the_windows_end(
    blackout_app: Callable[..., Celery],
    client: Any,
    published: Published,
    caplog: pytest.LogCaptureFixture,
) -> None:
    zone = zone_where_now_is("11:59:58.5")  # the window ends in 1 to 2 s
    until = datetime.combine(datetime.now(zone).date(), datetime.min.time(), tzinfo=zone)
    until += timedelta(hours=12)
    app = blackout_app(
        redbeat_blackout_windows=["11:00-12:00"],
        redbeat_blackout_entries=["maint-*"],
        redbeat_blackout_action="postpone",
        redbeat_blackout_timezone=zone,
    )
    due_entry(app, "maint-vacuum")
    scheduler = RedBeatScheduler(app=app)
    try:
        with caplog.at_level(logging.INFO, "celery.beat"):
            scheduler.tick()
            assert published.tasks == []
            assert client.zscore(SCHEDULE_KEY, "redbeat:maint-vacuum") == pytest.approx(
                until.timestamp(), abs=1e-3
            )
            assert meta_of(client, "maint-vacuum")["total_run_count"] == 0
            wait_for(
                lambda: scheduler.tick() is not None and bool(published.tasks),
                timeout=10,
                what="the postponed run is published",
            )
    finally:
        scheduler.close()
    assert published.tasks == ["tasks.maint-vacuum"]
    assert time.time() >= until.timestamp()
    assert meta_of(client, "maint-vacuum")["total_run_count"] == 1
    (line,) = skip_lines(caplog, "maint-vacuum")
    message = line.getMessage()
    assert message.startswith("beat: postponed the run of 'maint-vacuum'")
    assert f"to {until.astimezone(UTC):%Y-%m-%d %H:%M:%S}.000 UTC" in message
    assert f"runs at {until:%Y-%m-%d} 12:00:00" in message
    assert message.endswith(f"(plugin {IMPORT_PATH})")


# ----------------------------------------------------------------------------- off by default


@pytest.mark.usefixtures("autoloaded")
def test_installed_alone_changes_nothing(
    make_app: Callable[..., Celery], published: Published
) -> None:
    app = make_app(**FAST_LOCK)
    assert get_runtime(app).plugins.pm.has_plugin(ENTRY_POINT_PLUGIN)
    due_entry(app, "maint-vacuum")
    run_ticks(app, ticks=1)
    assert published.tasks == ["tasks.maint-vacuum"]


@pytest.mark.usefixtures("autoloaded")
def test_blocking_the_plugin_lifts_the_blackout(
    make_app: Callable[..., Celery], published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BLOCK_ENV, "blackout")
    app = make_app(
        redbeat_blackout_windows=["00:00-24:00"], redbeat_blackout_entries=["*"], **FAST_LOCK
    )
    assert not get_runtime(app).plugins.pm.has_plugin(ENTRY_POINT_PLUGIN)
    due_entry(app, "maint-vacuum")
    run_ticks(app, ticks=1)
    assert published.tasks == ["tasks.maint-vacuum"]


# ----------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("conf", "setting", "message"),
    [
        ({"redbeat_blackout_windows": "25:00-06:00"}, "redbeat_blackout_windows", "not a time"),
        ({"redbeat_blackout_windows": ["22:00"]}, "redbeat_blackout_windows", "not start-end"),
        ({"redbeat_blackout_windows": 22}, "redbeat_blackout_windows", "daily windows"),
        ({"redbeat_blackout_windows": "6:00-6:00"}, "redbeat_blackout_windows", "empty"),
        ({"redbeat_blackout_entries": ["maint-*", ""]}, "redbeat_blackout_entries", "globs"),
        ({"redbeat_blackout_action": "later"}, "redbeat_blackout_action", "skip or postpone"),
        ({"REDBEAT_BLACKOUT_ACTION": "later"}, "redbeat_blackout_action", "skip or postpone"),
        ({"redbeat_blackout_timezone": "Mars/Olympus"}, "redbeat_blackout_timezone", "IANA"),
        # Celery's timezone, read as the plugin's default: the error names what was set.
        ({"timezone": "Mars/Olympus"}, "timezone", "read as redbeat_blackout_timezone, unset"),
        (  # a window with no entries would black out nothing, silently
            {"redbeat_blackout_entries": None},
            "redbeat_blackout_entries",
            "name the entries it blacks out",
        ),
        (  # a postponed run would wait for an end that never comes
            {"redbeat_blackout_windows": ["00:00-12:00", "11:00-24:00"]},
            "redbeat_blackout_windows",
            "never run",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it_and_the_plugin(
    blackout_app: Callable[..., Celery], conf: dict[str, Any], setting: str, message: str
) -> None:
    good = {
        "redbeat_blackout_windows": ["22:00-06:00"],
        "redbeat_blackout_entries": ["maint-*"],
        "redbeat_blackout_action": "postpone",
    }
    keys = {key.lower() for key in conf}
    app = blackout_app(**{k: v for k, v in good.items() if k not in keys}, **conf)
    with pytest.raises(ConfigurationError, match=message) as info:
        RedBeatScheduler(app=app)
    assert info.value.setting == setting
    assert str(info.value).startswith(f"invalid setting {setting}=")
    assert str(info.value).endswith("(a setting of the plugin redbeat-blackout)")


def test_upper_case_settings_work_too(
    blackout_app: Callable[..., Celery], published: Published
) -> None:
    app = blackout_app(
        REDBEAT_BLACKOUT_WINDOWS="22:00-06:00",
        REDBEAT_BLACKOUT_ENTRIES="maint-*",
        REDBEAT_BLACKOUT_TIMEZONE=zone_where_now_is("03:00"),
    )
    due_entry(app, "maint-vacuum")
    run_ticks(app, ticks=1)
    assert published.tasks == []


def test_a_misspelled_setting_is_warned_about_with_the_closest_name(
    blackout_app: Callable[..., Celery],
    published: Published,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = blackout_app(
        redbeat_blackout_window=["00:00-24:00"],  # sic: the plugin is then off
        redbeat_blackout_entries=["maint-*"],
    )
    with caplog.at_level(logging.WARNING, "celery.beat"):
        due_entry(app, "maint-vacuum")
        run_ticks(app, ticks=1)
    warnings = [
        r.getMessage() for r in caplog.records if "redbeat_blackout_window " in r.getMessage()
    ]
    assert warnings == [
        "RedBeat: the setting redbeat_blackout_window is not declared by RedBeat or by any "
        "installed plugin, so it is ignored; did you mean redbeat_blackout_windows?"
    ]
    assert published.tasks == ["tasks.maint-vacuum"]


# ----------------------------------------------------------------------------- a real celery beat

BEAT_APP = textwrap.dedent(
    """
    import os

    from celery import Celery

    BASE = os.environ["BLACKOUT_SERVER"]
    app = Celery("blackout_beat")
    app.conf.update(
        broker_url=BASE + "/1",
        redbeat_redis_url=BASE + "/0",
        beat_max_loop_interval=1,
        redbeat_blackout_windows=["00:00-24:00"],
        redbeat_blackout_entries=["maint-*"],
        beat_schedule={
            "maint-vacuum": {"task": "blackout.vacuum", "schedule": 0.5},
            "report": {"task": "blackout.report", "schedule": 0.5},
        },
    )
    """
)


@pytest.mark.usefixtures("autoloaded")
def test_a_real_celery_beat_skips_through_the_entry_point(tmp_path: Path, redbeat_url: str) -> None:
    (tmp_path / "blackout_beat.py").write_text(BEAT_APP)
    base = redbeat_url.rsplit("/", 1)[0]
    broker = redis.Redis.from_url(base + "/1", decode_responses=True)
    log = tmp_path / "beat.log"
    env = {
        **os.environ,
        "BLACKOUT_SERVER": base,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        *(sys.executable, "-m", "celery", "-A", "blackout_beat", "beat"),
        *("-S", "redbeat.RedBeatScheduler", "--loglevel=INFO"),
        f"--schedule={tmp_path / 'celerybeat-schedule'}",
        f"--pidfile={tmp_path / 'beat.pid'}",
    ]

    def sent() -> list[str]:
        return [json.loads(m)["headers"]["task"] for m in broker.lrange("celery", 0, -1)]

    with log.open("ab") as out:
        beat = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=env,
        )
    try:

        def reported_three_times() -> bool:
            if beat.poll() is not None:
                pytest.fail(f"beat exited ({beat.returncode}):\n{log.read_text()}", pytrace=False)
            return sent().count("blackout.report") >= 3

        wait_for(reported_three_times, 45.0, "beat publishing the report")
        beat.send_signal(signal.SIGTERM)
        beat.wait(timeout=15)
    finally:
        if beat.poll() is None:
            beat.kill()
            beat.wait()
        broker.close()
    assert "blackout.vacuum" not in sent()
    text = log.read_text()
    assert "redbeat-blackout: skip runs of maint-* during 00:00-24:00 (UTC)" in text
    assert "skipped the run of 'maint-vacuum'" in text
    assert f"entries 'maint-*' (plugin {ENTRY_POINT_PLUGIN})" in text
