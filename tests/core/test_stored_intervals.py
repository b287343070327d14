"""Intervals the beat refuses to run, found stored (issue #16, item 2), without a server.

A celery-redbeat beat or a script may store an interval of 0, -5 or 1e-9 seconds: on main
before this change the tick published it, found it due again at once and published it again,
about 300 times a second. Now planning quarantines it with a reason naming
``redbeat_min_interval``, and the healthy entries claimed with it run as usual. Decoding the
entry still works (``from_key`` loads it, so it can be fixed and saved again).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import schedule

from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.exceptions import EntryDecodeError, InvalidEntryError
from redbeat_core.planning import Plan, TickTime, plan_tick
from redbeat_core.records import decode_entry
from redbeat_core.runtime import get_runtime
from redbeat_core.typing import StoredEntry

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
T = NOW.timestamp()


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("stored-intervals", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="teststore://nowhere")
    yield app
    app.close()


def raw(name: str, schedule: Any, *, last: datetime | None = None) -> StoredEntry:
    """An entry as another writer stored it: the JSON written by hand, due a second ago."""
    definition = {
        "name": name,
        "task": f"tasks.{name}",
        "args": [],
        "kwargs": {},
        "options": {},
        "schedule": schedule,
        "enabled": True,
    }
    meta = None
    if last is not None:
        stamp = {"__type__": "datetime", "timezone": "UTC"}
        stamp.update(
            {k: getattr(last, k) for k in ("year", "month", "day", "hour", "minute", "second")}
        )
        stamp["microsecond"] = last.microsecond
        meta = json.dumps({"last_run_at": stamp, "total_run_count": 3})
    return StoredEntry(name, json.dumps(definition), meta, None, T - 1)


def interval(every: float, relative: bool = False) -> dict[str, Any]:
    return {"__type__": "interval", "every": every, "relative": relative}


def plan(app: Celery, *records: StoredEntry) -> Plan:
    return plan_tick(
        records,
        app=app,
        codec=get_runtime(app).codec,
        time=TickTime(now=T, schedule_now=NOW),
        entry_class=RedBeatSchedulerEntry,
    )


@pytest.mark.parametrize(
    ("schedule", "shown"),
    [
        pytest.param(interval(0), "every 0 s", id="zero"),
        pytest.param(interval(-5), "every -5 s", id="negative"),
        pytest.param(interval(1e-9), "every 0 s", id="tiny"),
        pytest.param(interval(0.01), "every 0.01 s", id="below-the-minimum"),
        pytest.param(0, "every 0 s", id="bare-number"),  # Celery's maybe_schedule form
    ],
)
def test_a_stored_interval_below_the_minimum_is_quarantined_and_the_others_run(
    app: Celery, schedule: Any, shown: str
) -> None:
    last = NOW - timedelta(minutes=2)
    result = plan(app, raw("loop", schedule, last=last), raw("healthy", interval(60), last=last))
    assert [run.name for run in result.runs] == ["healthy"]
    ((name, reason),) = [(q.name, q.reason) for q in result.quarantine]
    assert name == "loop"
    assert reason.startswith(f"invalid schedule {shown}: an interval must be at least 0.1 s")
    assert "(redbeat_min_interval)" in reason


def test_a_stored_never_run_zero_interval_is_quarantined_too(app: Celery) -> None:
    result = plan(app, raw("fresh", interval(0)))
    assert result.runs == ()
    assert [q.name for q in result.quarantine] == ["fresh"]


def test_a_stored_sub_second_relative_interval_is_quarantined(app: Celery) -> None:
    last = NOW - timedelta(seconds=2)
    result = plan(app, raw("relative", interval(0.5, relative=True), last=last))
    ((quarantined,),) = [result.quarantine]
    assert "relative=True" in quarantined.reason
    assert "every 0.5 s with relative=True" in quarantined.reason


def test_a_stored_sub_second_interval_above_the_minimum_runs(app: Celery) -> None:
    last = NOW - timedelta(seconds=1)
    result = plan(app, raw("fast", interval(0.25), last=last))
    (planned,) = result.runs
    assert planned.next_score == pytest.approx(T + 0.25)
    assert result.quarantine == ()


def test_a_refused_stored_entry_still_loads_so_it_can_be_fixed(app: Celery) -> None:
    """``from_key`` decodes what is stored as it is; only running it is refused. Fixing the
    schedule makes it storable again."""
    stored = raw("fixme", interval(0))
    codec = get_runtime(app).codec
    entry = decode_entry(stored, app=app, codec=codec, entry_class=RedBeatSchedulerEntry)
    assert entry.schedule.run_every == timedelta(0)
    with pytest.raises(InvalidEntryError):
        entry.is_due()
    with pytest.raises(InvalidEntryError):
        entry.to_stored()
    entry.schedule = 30  # only the constructor turns a number into an interval
    with pytest.raises(InvalidEntryError, match=r"assign celery\.schedules\.schedule"):
        entry.to_stored()
    entry.schedule = schedule(30)
    assert entry.to_stored().name == "fixme"


def test_a_stored_rrule_that_never_steps_is_quarantined_as_undecodable(app: Celery) -> None:
    """interval 0: dateutil would never find the next occurrence (item 1 bounded it with the
    planning budget; now the rule is refused when it is decoded)."""
    rule = {"__type__": "rrule", "freq": 6, "interval": 0, "dtstart": int(T) - 3600}
    with pytest.raises(EntryDecodeError, match="interval must be a whole number >= 1"):
        get_runtime(app).codec.decode_definition(raw("r", rule).definition, name="r")
    result = plan(app, raw("r", rule))
    assert [q.name for q in result.quarantine] == ["r"]
    assert "interval must be a whole number >= 1" in result.quarantine[0].reason
