"""Scheduling policies with a controllable clock: misfire, starting deadline, jitter and
bounds, planned by the tick's pure steps and decided by the ``redbeat.policies`` plugin.

Each test builds records as a store returns them, plans a tick at an explicit instant, lets the
policies plugin decide (as the scheduler does), and settles: what would be published and what
would be stored. No server, no clock but the one given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
from celery import Celery
from celery.schedules import crontab, schedule

from redbeat_core import policies
from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.model import EntryPolicy
from redbeat_core.planning import Plan, Settled, TickTime, plan_tick, settle
from redbeat_core.policy import PolicyDefaults, jitter_offset
from redbeat_core.runs import DueRuns
from redbeat_core.runtime import get_runtime
from redbeat_core.typing import EntryUpdate, StoredEntry

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
T = NOW.timestamp()
HOUR = 3600.0


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("policies", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="teststore://nowhere", timezone="UTC")
    yield app
    app.close()


def record(
    app: Celery,
    name: str,
    sched: Any,
    *,
    last: datetime | None,
    score: float | None = None,
    runs: int = 0,
    **policy: Any,
) -> StoredEntry:
    """What a store returns for an entry with ``policy``; ``score`` defaults to the one saving
    it at NOW computes."""
    entry = RedBeatSchedulerEntry(
        name, f"tasks.{name}", sched, app=app, policy=EntryPolicy(**policy) if policy else None
    )
    entry.last_run_at = last
    entry.total_run_count = runs
    stored = entry.to_stored(NOW)
    return StoredEntry(
        name,
        stored.definition,
        stored.meta,
        stored.policy,
        stored.score if score is None else score,
    )


def plan(app: Celery, *records: StoredEntry, at: float = T) -> Plan:
    return plan_tick(
        records,
        app=app,
        codec=get_runtime(app).codec,
        time=TickTime(now=at, schedule_now=NOW + timedelta(seconds=at - T)),
        entry_class=RedBeatSchedulerEntry,
        defaults=get_runtime(app).policy_defaults,
    )


def tick(app: Celery, *records: StoredEntry, at: float = T) -> Settled:
    """Plan, let the policies plugin decide, settle: the tick without its I/O."""
    planned = plan(app, *records, at=at)
    runs = DueRuns([p.run for p in planned.runs], now=at)
    policies.redbeat_decide_runs(scheduler=SimpleNamespace(app=app), runs=runs)  # type: ignore[arg-type]
    return settle(planned, runs.decided, codec=get_runtime(app).codec)


def stored_update(settled: Settled, name: str) -> EntryUpdate:
    (update,) = [u for u in settled.updates if u.name == name]
    return update


def meta(update: EntryUpdate) -> dict[str, Any]:
    assert update.meta is not None
    return dict(json.loads(update.meta))


# ------------------------------------------------------------------------- misfire


def test_by_default_missed_runs_run_once_as_celery_does(app: Celery) -> None:
    late = record(app, "late", schedule(60), last=NOW - timedelta(hours=2), score=T - 7140)
    settled = tick(app, late)
    assert [name for name, _, _ in settled.publish] == ["late"]
    assert settled.skipped == ()
    assert stored_update(settled, "late").score == pytest.approx(T + 60)


def test_misfire_skip_drops_a_late_run_and_goes_to_the_next_future_due_time(
    app: Celery,
) -> None:
    hourly = record(
        app,
        "hourly",
        crontab(minute=0),
        last=NOW - timedelta(hours=3),
        score=T - 2 * HOUR,
        misfire="skip",
    )
    settled = tick(app, hourly, at=T + 1800)  # 12:30, two and a half hours after 10:00
    assert settled.publish == ()
    (skipped,) = settled.skipped
    assert skipped.decision.plugin is None or "policies" in (skipped.decision.plugin or "")
    assert skipped.decision.reason.startswith("misfire: 9000.0s late")
    update = stored_update(settled, "hourly")
    assert update.score == pytest.approx(T + HOUR)  # 13:00: the next future due time
    assert meta(update)["total_run_count"] == 0  # a skip is not a run


def test_misfire_skip_runs_a_run_within_the_grace(app: Celery) -> None:
    entry = record(app, "e", schedule(60), last=NOW - timedelta(seconds=65), misfire="skip")
    settled = tick(app, entry)  # due at T - 5: a restart's lateness, not an outage
    assert [name for name, _, _ in settled.publish] == ["e"]


def test_the_app_wide_default_applies_to_entries_without_their_own(app: Celery) -> None:
    app.conf.redbeat_misfire = "skip"
    app.conf.redbeat_misfire_grace = 10.0
    plain = record(app, "plain", schedule(60), last=NOW - timedelta(seconds=90), score=T - 30)
    own = record(
        app,
        "own",
        schedule(60),
        last=NOW - timedelta(seconds=90),
        score=T - 30,
        misfire="run_once",
    )
    settled = tick(app, plain, own)
    assert [name for name, _, _ in settled.publish] == ["own"]
    assert [s.entry.name for s in settled.skipped] == ["plain"]


def test_run_all_runs_every_missed_due_time_oldest_first_carrying_it(app: Celery) -> None:
    last = NOW - timedelta(seconds=300.5)
    entry = record(app, "e", schedule(60), last=last, score=T - 240.5, misfire="run_all")
    settled = tick(app, entry)
    dues = [last + timedelta(seconds=60 * k) for k in range(1, 6)]
    assert [due for _, _, due in settled.publish] == [d.timestamp() for d in dues]
    headers = [e.options["headers"]["redbeat_due_at"] for _, e, _ in settled.publish]
    assert headers == [d.isoformat() for d in dues]
    assert [e.total_run_count for _, e, _ in settled.publish] == [1, 2, 3, 4, 5]
    update = stored_update(settled, "e")  # one update, after the last run
    assert meta(update)["total_run_count"] == 5
    assert update.score == pytest.approx((last + timedelta(seconds=360)).timestamp())


def test_run_all_on_a_crontab_runs_each_missed_match(app: Celery) -> None:
    entry = record(
        app,
        "hourly",
        crontab(minute=0),
        last=NOW - timedelta(hours=3),
        score=T - 2 * HOUR,
        misfire="run_all",
    )
    settled = tick(app, entry, at=T + 0.5)
    assert [due for _, _, due in settled.publish] == [T - 2 * HOUR, T - HOUR, T]
    assert stored_update(settled, "hourly").score == pytest.approx(T + HOUR)


def test_run_all_is_capped_and_the_older_runs_are_one_skip(app: Celery) -> None:
    app.conf.redbeat_misfire_limit = 3
    last = NOW - timedelta(seconds=600.5)
    entry = record(app, "e", schedule(60), last=last, misfire="run_all")
    settled = tick(app, entry)
    assert len(settled.publish) == 3  # the newest three of ten
    assert [due for _, _, due in settled.publish] == [T - 120.5, T - 60.5, T - 0.5]
    (skipped,) = settled.skipped
    assert skipped.decision.reason.startswith("misfire: 7 older missed due times left out")
    assert meta(stored_update(settled, "e"))["total_run_count"] == 3


def test_a_starting_deadline_skips_runs_too_late_to_start(app: Celery) -> None:
    late = record(
        app,
        "late",
        schedule(60),
        last=NOW - timedelta(seconds=105),
        score=T - 45,
        starting_deadline=30,
    )
    fresh = record(
        app,
        "fresh",
        schedule(60),
        last=NOW - timedelta(seconds=70),
        score=T - 10,
        starting_deadline=30,
    )
    settled = tick(app, late, fresh)
    assert [name for name, _, _ in settled.publish] == ["fresh"]
    (skipped,) = settled.skipped
    assert skipped.entry.name == "late"
    assert skipped.decision.reason == (
        "deadline: it would start 45.0s after its due time (starting_deadline=30s)"
    )


def test_run_all_with_a_deadline_runs_only_the_catch_ups_within_it(app: Celery) -> None:
    last = NOW - timedelta(seconds=300.5)
    entry = record(app, "e", schedule(60), last=last, misfire="run_all", starting_deadline=130)
    settled = tick(app, entry)
    assert [due for _, _, due in settled.publish] == [T - 120.5, T - 60.5, T - 0.5]
    assert len(settled.skipped) == 2
    assert meta(stored_update(settled, "e"))["total_run_count"] == 3


# ------------------------------------------------------------------------- jitter


def test_jitter_is_a_function_of_name_and_due_time() -> None:
    assert jitter_offset("a", T, 60) == jitter_offset("a", T, 60)
    assert jitter_offset("a", T, 60) != jitter_offset("b", T, 60)
    assert jitter_offset("a", T, 60) != jitter_offset("a", T + HOUR, 60)
    assert jitter_offset("a", T, 0) == 0.0
    offsets = [jitter_offset(f"report-{i}", T, 300) for i in range(10_000)]
    assert 0 <= min(offsets) < 1
    assert 299 < max(offsets) < 300
    per_minute = [sum(1 for o in offsets if m * 60 <= o < (m + 1) * 60) for m in range(5)]
    assert all(1800 < n < 2200 for n in per_minute), per_minute  # spread evenly


def test_a_jittered_entry_is_stored_at_its_real_time(app: Celery) -> None:
    entry = record(app, "report", crontab(minute=0), last=NOW, jitter=300)
    offset = jitter_offset("report", T + HOUR, 300)
    assert entry.score == pytest.approx(T + HOUR + offset, abs=1e-3)


def test_a_jittered_run_counts_at_its_place_in_the_schedule(app: Celery) -> None:
    offset = jitter_offset("e", T + 60, 20)
    entry = record(app, "e", schedule(60), last=NOW, jitter=20)
    assert entry.score == pytest.approx(T + 60 + offset, abs=1e-3)
    assert entry.score is not None
    settled = tick(app, entry, at=entry.score)  # claimed at its jittered time
    ((_, ran, due),) = settled.publish
    assert due == pytest.approx(entry.score, abs=1e-3)
    assert ran.last_run_at == NOW + timedelta(seconds=60)  # its nominal due time: no drift
    next_offset = jitter_offset("e", T + 120, 20)
    assert stored_update(settled, "e").score == pytest.approx(T + 120 + next_offset, abs=1e-3)


def test_a_jittered_entry_claimed_at_its_nominal_time_waits_for_its_jitter(app: Celery) -> None:
    entry = record(app, "e", schedule(60), last=NOW - timedelta(seconds=60), score=T, jitter=20)
    settled = tick(app, entry)  # a score written without the jitter (policy just added)
    assert settled.publish == ()
    assert stored_update(settled, "e").score == pytest.approx(
        T + jitter_offset("e", T, 20), abs=1e-3
    )


# ------------------------------------------------------------------------- bounds


def test_an_interval_starts_at_its_start_and_a_crontab_at_its_first_match(app: Celery) -> None:
    start = NOW + timedelta(minutes=7)
    every = record(app, "every", schedule(600), last=None, start_at=start)
    hourly = record(app, "hourly", crontab(minute=0), last=None, start_at=start)
    assert every.score == pytest.approx(start.timestamp())
    assert hourly.score == pytest.approx(T + HOUR)  # 13:00, not at once (sibson/redbeat#154)
    early = tick(app, attrs.evolve(hourly, score=T))  # a score from before the policy
    assert early.publish == ()
    assert stored_update(early, "hourly").score == pytest.approx(T + HOUR)


def test_an_entry_past_its_end_finishes(app: Celery) -> None:
    ended = record(
        app,
        "ended",
        schedule(60),
        last=NOW - timedelta(seconds=60),
        score=T,
        end_at=NOW - timedelta(seconds=1),
    )
    settled = tick(app, ended)
    assert settled.publish == ()
    assert stored_update(settled, "ended") == EntryUpdate("ended", None, None)


def test_max_runs_finishes_the_entry_after_its_last_run(app: Celery) -> None:
    entry = record(
        app, "thrice", schedule(60), last=NOW - timedelta(seconds=60), runs=2, max_runs=3
    )
    settled = tick(app, entry)
    assert [name for name, _, _ in settled.publish] == ["thrice"]
    update = stored_update(settled, "thrice")
    assert (meta(update)["total_run_count"], update.score) == (3, None)
    finished = record(app, "done", schedule(60), last=NOW, runs=3, max_runs=3)
    assert finished.score is None


def test_a_policy_that_is_celerys_behaviour_takes_the_fast_path(app: Celery) -> None:
    assert PolicyDefaults().inert
    entry = RedBeatSchedulerEntry("e", "t", schedule(60), app=app, policy=EntryPolicy())
    assert entry.resolved_policy() is None
    app.conf.redbeat_jitter = 5.0
    fresh = Celery("jittered", set_as_current=False)
    fresh.conf.update(redbeat_url="teststore://nowhere", redbeat_jitter=5.0)
    jittered = RedBeatSchedulerEntry("e", "t", schedule(60), app=fresh)
    resolved = jittered.resolved_policy()
    assert resolved is not None
    assert resolved.jitter == 5.0
    fresh.close()


def test_a_dict_policy_with_an_unknown_field_is_refused_with_the_closest(app: Celery) -> None:
    from redbeat_core.exceptions import InvalidEntryError

    with pytest.raises(InvalidEntryError, match="did you mean 'misfire'"):
        RedBeatSchedulerEntry("e", "t", schedule(60), app=app, policy={"misfir": "skip"})


# ------------------------------------------------------------------------- blackouts

CALENDARS = {
    "nightly": {"cron": "* 22-23,0-5 * * *", "tz": "Europe/Paris"},
    "freeze": {"between": [["2030-01-01T11:30:00", "2030-01-01T12:30:00"]], "tz": "UTC"},
}


def test_calendars_are_checked_naming_the_calendar() -> None:
    from redbeat_core.blackouts import parse_calendars
    from redbeat_core.settings import InvalidValue

    calendars = parse_calendars(CALENDARS)
    assert calendars["nightly"].covering(datetime(2030, 1, 1, 22, 30, tzinfo=UTC).timestamp())
    assert calendars["nightly"].covering(T) is None  # 13:00 in Paris
    assert calendars["freeze"].covering(T) == "between 2030-01-01 11:30 and 2030-01-01 12:30"
    for bad, says in (
        ({"x": {"cron": "* * *"}}, "not a crontab expression"),
        ({"x": {"cron": "* 25 * * *"}}, "'* 25 * * *'"),
        ({"x": {"tz": "Mars/Olympus", "cron": "* * * * *"}}, "unknown time zone"),
        ({"x": {"between": [["2030-01-02", "2030-01-01"]]}}, "ends before it starts"),
        ({"x": {}}, "needs 'cron' or 'between'"),
        ({"x": {"crons": "* * * * *"}}, "unknown key 'crons'"),
    ):
        with pytest.raises(InvalidValue, match=re.escape(says)) as caught:
            parse_calendars(bad)
        assert caught.value.key == "x"


def test_a_run_in_a_blackout_is_skipped_with_the_calendars_name(app: Celery) -> None:
    app.conf.redbeat_calendars = CALENDARS
    frozen = record(app, "frozen", schedule(60), last=NOW - timedelta(seconds=60), score=T,
                    blackouts=["freeze"])  # fmt: skip
    free = record(app, "free", schedule(60), last=NOW - timedelta(seconds=60), score=T,
                  blackouts=["nightly"])  # fmt: skip
    settled = tick(app, frozen, free)
    assert [name for name, _, _ in settled.publish] == ["free"]
    (skipped,) = settled.skipped
    assert skipped.decision.reason == (
        "blackout: in 'freeze' (between 2030-01-01 11:30 and 2030-01-01 12:30, UTC)"
    )
    assert stored_update(settled, "frozen").score == pytest.approx(T + 60)  # moves on


def test_postponed_to_the_end_of_overlapping_calendars(app: Celery) -> None:
    app.conf.redbeat_calendars = {
        **CALENDARS,
        "lunch": {"cron": "* 12 * * *", "tz": "UTC"},  # 12:00-13:00, overlapping the freeze
    }
    entry = record(app, "e", schedule(60), last=NOW - timedelta(seconds=60), score=T,
                   blackouts=["freeze", "lunch"], blackout_action="postpone")  # fmt: skip
    settled = tick(app, entry)
    assert settled.publish == ()
    (skipped,) = settled.skipped
    assert skipped.decision.action == "postpone"
    assert skipped.decision.until == T + 3600  # 13:00: the end of both, not of the first
    assert stored_update(settled, "e") == EntryUpdate("e", None, T + 3600)


def test_the_app_wide_blackouts_apply_and_an_entry_may_opt_out(app: Celery) -> None:
    app.conf.update(redbeat_calendars=CALENDARS, redbeat_blackouts=["freeze"])
    plain = record(app, "plain", schedule(60), last=NOW - timedelta(seconds=60), score=T)
    opted_out = record(app, "out", schedule(60), last=NOW - timedelta(seconds=60), score=T,
                       blackouts=[])  # fmt: skip
    settled = tick(app, plain, opted_out)
    assert [name for name, _, _ in settled.publish] == ["out"]


def test_an_undeclared_calendar_is_refused_when_saved(app: Celery) -> None:
    from redbeat_core.exceptions import InvalidEntryError

    app.conf.redbeat_calendars = CALENDARS
    entry = RedBeatSchedulerEntry(
        "e", "t", schedule(60), app=app, policy={"blackouts": ["nigthly"]}
    )
    with pytest.raises(InvalidEntryError, match=r"policy\.blackouts 'nigthly': names of calendars"):
        entry.to_stored(NOW)


def test_a_one_off_with_a_policy_that_ran_finishes(app: Celery) -> None:
    from redbeat_core.schedules import clocked

    once = record(app, "once", clocked(NOW - timedelta(minutes=5)),
                  last=NOW - timedelta(minutes=4), score=T, jitter=5)  # fmt: skip
    settled = tick(app, once)
    assert settled.publish == ()
    assert stored_update(settled, "once") == EntryUpdate("once", None, None)
