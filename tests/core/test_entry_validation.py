"""What the entry API accepts (issue #16, items 2 and 10), without a server.

Every invalid argument raises ``InvalidEntryError`` (a ``ValueError``) naming the entry, the
field and what is accepted: from the constructor for a schedule Celery cannot hold, from
``save()`` (``to_stored()``, what it writes) for everything else. On main before this change
these were saved as they were ("None", "123", "" as names; args as a dict; intervals of 0, -5
or 1e-9, which then published in a loop) or failed with raw ``AttributeError``, ``TypeError``
or ``OverflowError`` naming no field.

The app's storage URL names no installed backend, so ``save()`` would fail if it reached the
store: an ``InvalidEntryError`` from it proves the entry is refused before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab, schedule

import redbeat_core
from redbeat_core.entry import RedBeatSchedulerEntry
from redbeat_core.exceptions import ConfigurationError, InvalidEntryError
from redbeat_core.model import EntryPolicy
from redbeat_core.schedules import clocked, rrule


def make_app(**conf: Any) -> Celery:
    app = Celery("validation", set_as_current=False)
    app.conf.update(broker_url="memory://", redbeat_url="teststore://nowhere", **conf)
    return app


@pytest.fixture
def app() -> Iterator[Celery]:
    app = make_app()
    yield app
    app.close()


def entry(app: Celery, **fields: Any) -> RedBeatSchedulerEntry:
    values: dict[str, Any] = {"name": "e", "task": "tasks.e", "schedule": 30.0, **fields}
    return RedBeatSchedulerEntry(app=app, **values)


def circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def test_the_error_is_a_value_error_exported_from_the_core() -> None:
    assert redbeat_core.InvalidEntryError is InvalidEntryError
    assert issubclass(InvalidEntryError, ValueError)
    error = InvalidEntryError("e", "args", {"a": 1}, "a list")
    assert (error.name, error.field, error.value) == ("e", "args", {"a": 1})
    assert str(error) == "entry 'e': invalid args {'a': 1}: a list"
    assert error.reason == "invalid args {'a': 1}: a list"


REFUSED_AT_SAVE = [
    pytest.param({"name": None}, "name", "a non-empty string", id="name-None"),
    pytest.param({"name": 123}, "name", "a non-empty string", id="name-int"),
    pytest.param({"name": ""}, "name", "a non-empty string", id="name-empty"),
    pytest.param({"name": ":schedule"}, "name", "not starting with ':'", id="name-own-key"),
    pytest.param({"task": None}, "task", "non-empty string", id="task-None"),
    pytest.param({"task": ""}, "task", "non-empty string", id="task-empty"),
    pytest.param({"task": 5}, "task", "non-empty string", id="task-int"),
    pytest.param({"args": {"a": 1}}, "args", "a list or tuple", id="args-dict"),
    pytest.param({"args": "ab"}, "args", "a list or tuple", id="args-str"),
    pytest.param({"args": 7}, "args", "a list or tuple", id="args-int"),
    pytest.param({"kwargs": [1, 2]}, "kwargs", "a dict with string keys", id="kwargs-list"),
    pytest.param({"kwargs": "ab"}, "kwargs", "a dict with string keys", id="kwargs-str"),
    pytest.param({"kwargs": {1: 2}}, "kwargs", "the key 1 is not a string", id="kwargs-int-key"),
    pytest.param({"options": 5}, "options", "a dict with string keys", id="options-int"),
    pytest.param({"enabled": "no"}, "enabled", "True or False", id="enabled-str"),
    pytest.param({"schedule": None}, "schedule", "a Celery schedule", id="schedule-None"),
    pytest.param({"schedule": 0}, "schedule", "redbeat_min_interval", id="every-0"),
    pytest.param({"schedule": -5}, "schedule", "redbeat_min_interval", id="every--5"),
    pytest.param({"schedule": 1e-9}, "schedule", "redbeat_min_interval", id="every-1e-9"),
    pytest.param({"schedule": 0.05}, "schedule", "at least 0.1 s", id="every-0.05"),
    pytest.param({"schedule": schedule(-5)}, "schedule", "redbeat_min_interval", id="sched--5"),
    pytest.param(
        {"schedule": timedelta(seconds=-1)}, "schedule", "redbeat_min_interval", id="td--1"
    ),
    pytest.param(
        {"schedule": schedule(0.5, relative=True)}, "schedule", "relative=False", id="relative"
    ),
    pytest.param({"schedule": 1e12}, "schedule", "next run can be computed", id="year-30000"),
    pytest.param({"args": [{1, 2}]}, "args", "found builtins.set", id="args-set"),
    pytest.param({"args": circular()}, "args", "Circular reference", id="args-circular"),
    pytest.param({"kwargs": {"at": object()}}, "kwargs", "as JSON", id="kwargs-object"),
    pytest.param({"kwargs": {"a": {(1, 2): 3}}}, "kwargs", "as JSON", id="kwargs-tuple-key"),
    pytest.param({"options": {"queue": object()}}, "options", "as JSON", id="options-object"),
    pytest.param(
        {"policy": EntryPolicy(extra={"x": object()})}, "policy", "as JSON", id="policy-object"
    ),
    pytest.param({"policy": "skip"}, "policy", "an EntryPolicy", id="policy"),
    pytest.param(
        {"policy": EntryPolicy(misfire="later")}, "policy.misfire", "'run_all'", id="misfire"
    ),
    pytest.param(
        {"policy": {"jitter": math.inf}}, "policy.jitter", "finite number", id="jitter-inf"
    ),
    pytest.param(
        {"policy": {"starting_deadline": -1}}, "policy.starting_deadline", "> 0", id="deadline"
    ),
    pytest.param({"policy": {"max_runs": 1.5}}, "policy.max_runs", ">= 1", id="max-runs"),
    pytest.param(
        {"policy": {"start_at": datetime(2026, 1, 1)}},  # naive: refused
        "policy.start_at",
        "an aware datetime",
        id="start-naive",
    ),
    pytest.param(
        {"policy": {"start_at": 2000.0, "end_at": 1000.0}},
        "policy.end_at",
        "after policy.start_at",
        id="end-before-start",
    ),
    pytest.param({"total_run_count": -1}, "total_run_count", ">= 0", id="count-negative"),
]


@pytest.mark.parametrize(("fields", "field", "accepted"), REFUSED_AT_SAVE)
def test_save_refuses_an_invalid_argument_naming_entry_field_and_what_is_accepted(
    app: Celery, fields: dict[str, Any], field: str, accepted: str
) -> None:
    built = entry(app, **fields)  # celery-redbeat code builds, then sets, then saves
    with pytest.raises(InvalidEntryError) as caught:
        built.save()
    error = caught.value
    assert error.field == field
    assert error.name == fields.get("name", "e")
    assert str(error).startswith(f"entry {error.name!r}: invalid {field} ")
    assert accepted in str(error)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("5", id="str"),
        pytest.param(object(), id="object"),
        pytest.param(True, id="bool"),
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param(-math.inf, id="-inf"),
        pytest.param(1e20, id="beyond-timedelta"),
    ],
)
def test_a_schedule_celery_cannot_hold_is_refused_when_the_entry_is_built(
    app: Celery, value: Any
) -> None:
    """Celery converts the schedule in the constructor: '5' and object() failed there with
    AttributeError, NaN and inf with ValueError/OverflowError, all naming no field; True became
    a 1 s interval."""
    with pytest.raises(InvalidEntryError) as caught:
        entry(app, name="built", schedule=value)
    assert (caught.value.name, caught.value.field) == ("built", "schedule")
    assert "a Celery schedule" in str(caught.value)


def test_a_name_that_is_the_lock_key_is_refused() -> None:
    app = make_app(redbeat_lock_key="redbeat:beatlock")
    try:
        for name in ("beatlock", "beatlock:epoch"):
            with pytest.raises(InvalidEntryError, match="redbeat_lock_key"):
                entry(app, name=name).to_stored()
        entry(app, name="beatlocker").to_stored()
    finally:
        app.close()


def test_delete_and_key_refuse_a_name_that_names_no_entry(app: Celery) -> None:
    """celery-redbeat's ``RedBeatSchedulerEntry(name, app=app).delete()`` still builds; a
    missing name no longer deletes the key 'redbeat:None'."""
    unnamed = RedBeatSchedulerEntry(app=app)
    with pytest.raises(InvalidEntryError) as caught:
        unnamed.delete()
    assert caught.value.field == "name"
    with pytest.raises(InvalidEntryError):
        _ = unnamed.key
    assert RedBeatSchedulerEntry("kept", app=app).key == "redbeat:kept"


ACCEPTED = [
    pytest.param({"schedule": 0.1}, id="every-0.1-the-minimum"),
    pytest.param({"schedule": 0.5}, id="every-0.5"),
    pytest.param({"schedule": timedelta(minutes=5)}, id="timedelta"),
    pytest.param({"schedule": schedule(1, relative=True)}, id="relative-1s"),
    pytest.param({"schedule": crontab(minute="*/5")}, id="crontab"),
    pytest.param({"schedule": crontab(day_of_month=29, month_of_year=2)}, id="leap-day"),
    pytest.param({"schedule": rrule("MINUTELY", interval=2)}, id="rrule"),
    pytest.param({"schedule": clocked(datetime(2001, 1, 1, tzinfo=UTC))}, id="clocked-past"),
    pytest.param({"args": None, "kwargs": None, "options": None}, id="none-for-none"),
    pytest.param({"args": (1, "two", [3.0], {"four": None})}, id="tuple-args"),
    pytest.param({"args": [math.nan, math.inf]}, id="nan-args-as-json-writes-them"),
    pytest.param({"kwargs": {"at": datetime(2030, 1, 1, tzinfo=UTC)}}, id="datetime-kwarg"),
    pytest.param({"options": {"queue": "low", "expires": 60}}, id="options"),
    pytest.param({"enabled": False}, id="disabled"),
    pytest.param({"name": "a name with spaces/and:colons"}, id="odd-but-fine-name"),
]


@pytest.mark.parametrize("fields", ACCEPTED)
def test_valid_entries_are_encoded_as_before(app: Celery, fields: dict[str, Any]) -> None:
    stored = entry(app, **fields).to_stored()
    assert stored.name == fields.get("name", "e")
    assert stored.definition is not None


def test_attributes_set_after_building_are_what_is_checked(app: Celery) -> None:
    """celery-redbeat's pattern: build with what is known, set the rest, then save."""
    draft = RedBeatSchedulerEntry(app=app)
    with pytest.raises(InvalidEntryError):
        draft.to_stored()
    draft.name, draft.task, draft.schedule = "later", "tasks.later", schedule(60)
    assert draft.to_stored().name == "later"
    draft.schedule = schedule(0)  # a valid entry made invalid before saving it again
    with pytest.raises(InvalidEntryError, match="redbeat_min_interval"):
        draft.to_stored()


def test_an_invalid_entry_is_refused_by_update_from_dict_style_building(app: Celery) -> None:
    """``update_from_dict`` and the start-up sync build entries from ``beat_schedule``-style
    dicts; a schedule Celery cannot hold fails there with the entry's name."""
    from redbeat_core.statics import build_entry

    with pytest.raises(InvalidEntryError) as caught:
        build_entry(RedBeatSchedulerEntry, app, "from-dict", {"task": "t", "schedule": "5"})
    assert caught.value.name == "from-dict"


@pytest.mark.parametrize(
    ("minimum", "every", "ok"),
    [(0.01, 0.05, True), (0.01, 0.005, False), (60, 30, False), (60, 60, True)],
)
def test_the_minimum_interval_is_a_setting(minimum: float, every: float, ok: bool) -> None:
    app = make_app(redbeat_min_interval=minimum)
    try:
        built = entry(app, schedule=every)
        if ok:
            built.to_stored()
        else:
            with pytest.raises(InvalidEntryError, match=f"at least {minimum:g} s"):
                built.to_stored()
    finally:
        app.close()


@pytest.mark.parametrize("value", [0, -1, 0.0001, math.nan, math.inf, "1", True])
def test_an_unusable_minimum_interval_fails_naming_the_setting(value: Any) -> None:
    app = make_app(redbeat_min_interval=value)
    try:
        with pytest.raises(ConfigurationError) as caught:
            entry(app)
        assert caught.value.setting == "redbeat_min_interval"
        assert ">= 0.001" in str(caught.value)
    finally:
        app.close()


@pytest.mark.parametrize("interval", [0, -1, 1.5, True])
def test_an_rrule_that_never_steps_is_refused_when_built(interval: Any) -> None:
    """dateutil with interval=0 never finds a next occurrence: save() used to hang forever."""
    with pytest.raises(ValueError, match="rrule interval must be a whole number >= 1"):
        rrule("SECONDLY", interval=interval)
