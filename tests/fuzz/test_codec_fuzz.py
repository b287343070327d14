"""The codec against hostile stored fields (no server needed).

Whatever a field holds (any JSON, JSON cut short, not JSON, nested two hundred thousand deep,
``__type__`` tags unknown, malformed or naming importable callables), decoding it either gives
a value or raises ``EntryDecodeError`` naming the entry with a reason: no other exception, so
the tick can always quarantine the entry. What decodes encodes again and reads back the same,
and nothing a tag names is ever called. Valid definitions of every schedule type survive a
round trip exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab, schedule, solar
from fuzz.canary import fired
from fuzz.fuzz_settings import fuzz_settings
from fuzz.strategies import as_text, definitions, json_values, metas, policies
from hypothesis import given
from hypothesis import strategies as st

from redbeat_core.codec import Codec
from redbeat_core.exceptions import EntryDecodeError
from redbeat_core.model import EntryDefinition, EntryMeta, EntryPolicy
from redbeat_core.schedules import clocked, rrule

CODEC = Codec()
T = TypeVar("T")
NAME = "fuzzed"


def decode(read: Callable[..., T], raw: str) -> T | EntryDecodeError:
    """What ``read(raw, name=NAME)`` returns, or the ``EntryDecodeError`` it raises (any other
    exception fails the test)."""
    try:
        return read(raw, name=NAME)
    except EntryDecodeError as exc:
        return exc


def refused_with_reason(exc: EntryDecodeError) -> bool:
    return exc.name == NAME and bool(exc.reason.strip()) and NAME in str(exc)


@fuzz_settings(300)
@given(as_text(definitions(NAME, "tasks.fuzzed")))
def test_a_definition_decodes_or_is_refused_with_a_reason(raw: str) -> None:
    definition = decode(CODEC.decode_definition, raw)
    if isinstance(definition, EntryDecodeError):
        assert refused_with_reason(definition), definition
    else:
        assert isinstance(definition, EntryDefinition)
        assert callable(definition.schedule.is_due)
        encoded = CODEC.encode_definition(definition)
        assert CODEC.encode_definition(CODEC.decode_definition(encoded, name=NAME)) == encoded
    assert not fired()


@pytest.mark.parametrize("value", ["86400000000000.0", "1e308", "NaN", "Infinity", "-Infinity"])
def test_a_bare_number_no_interval_can_hold_is_refused_with_a_reason(value: str) -> None:
    """Found by the fuzz above: a bare number (Celery reads it as an interval) beyond what a
    ``timedelta`` holds raised OverflowError (NaN: ValueError) out of ``decode_definition``,
    whose contract is ``EntryDecodeError``. The tick quarantined it anyway (it catches
    anything), but ``RedBeatScheduler.schedule`` and other readers let the error out."""
    raw = f'{{"name": "{NAME}", "task": "tasks.t", "schedule": {value}}}'
    refused = decode(CODEC.decode_definition, raw)
    assert isinstance(refused, EntryDecodeError)
    assert refused_with_reason(refused)
    assert "invalid schedule" in refused.reason


@fuzz_settings(200)
@given(as_text(metas()))
def test_a_meta_decodes_or_is_refused_with_a_reason(raw: str) -> None:
    meta = decode(CODEC.decode_meta, raw)
    if isinstance(meta, EntryDecodeError):
        assert refused_with_reason(meta), meta
    else:
        assert isinstance(meta, EntryMeta)
        assert isinstance(meta.total_run_count, int)
        assert meta.last_run_at is None or meta.last_run_at.tzinfo is not None
        encoded = CODEC.encode_meta(meta)
        assert CODEC.encode_meta(CODEC.decode_meta(encoded, name=NAME)) == encoded
    assert not fired()


@fuzz_settings(200)
@given(as_text(policies()))
def test_a_policy_decodes_or_is_refused_with_a_reason(raw: str) -> None:
    policy = decode(CODEC.decode_policy, raw)
    if isinstance(policy, EntryDecodeError):
        assert refused_with_reason(policy), policy
    else:
        assert isinstance(policy, EntryPolicy)
        encoded = CODEC.encode_policy(policy)
        assert CODEC.encode_policy(CODEC.decode_policy(encoded, name=NAME)) == encoded
    assert not fired()


@fuzz_settings(200)
@given(json_values)
def test_any_value_in_the_arguments_is_read_back_as_written(value: Any) -> None:
    """Arguments are data: a tag the codec does not know stays a dict (with its tag), a known
    one is rebuilt, nothing is ever called. Once written by RedBeat, a value reads back as
    written (the first write may normalise a known tag: celery-redbeat's rrule format drops
    microseconds and zone names, and an rrule stored without ``dtstart`` starts when read)."""
    try:
        loaded = CODEC.loads(CODEC.dumps({"args": [value]}))
    except ValueError:
        loaded = None  # a known tag with fields it refuses: the entry is quarantined for it
    if loaded is not None:
        written = CODEC.dumps(loaded)
        assert CODEC.dumps(CODEC.loads(written)) == written
    assert not fired()


# ------------------------------------------------------------------------- valid round trips

zones = st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata")])
moments = st.builds(
    lambda seconds, zone: (
        datetime(2020, 1, 1, tzinfo=UTC).astimezone(zone) + timedelta(seconds=seconds)
    ),
    st.integers(min_value=0, max_value=20 * 365 * 86400),
    zones,
)
minutes = st.sampled_from(["*", "*/5", "0", "1-3", "0,30"])
hours = st.sampled_from(["*", "*/5", "0", "1-3", "0,12"])
valid_schedules = st.one_of(
    st.floats(min_value=1, max_value=10**7).map(lambda s: schedule(timedelta(seconds=s))),
    st.builds(
        crontab,
        minute=minutes,
        hour=hours,
        day_of_week=st.sampled_from(["*", "mon", "1-5"]),
    ),
    moments.map(clocked),
    st.builds(
        lambda freq, start, interval, count: rrule(
            freq, dtstart=start, interval=interval, count=count
        ),
        st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]),
        moments,
        st.integers(min_value=1, max_value=10),
        st.none() | st.integers(min_value=1, max_value=100),
    ),
    st.builds(
        solar,
        st.sampled_from(["sunrise", "sunset", "solar_noon", "dawn_civil"]),
        st.floats(min_value=-60, max_value=60),
        st.floats(min_value=-180, max_value=180),
    ),
)
plain_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
    max_leaves=8,
)


@fuzz_settings(200)
@given(
    valid_schedules,
    st.text(min_size=1, max_size=20),
    st.lists(plain_json, max_size=3),
    st.dictionaries(st.text(max_size=8), plain_json, max_size=3),
    st.booleans(),
)
def test_a_valid_definition_survives_a_round_trip(
    sched: Any, task: str, args: list[Any], kwargs: dict[str, Any], enabled: bool
) -> None:
    definition = EntryDefinition(
        name=NAME, task=task, schedule=sched, args=args, kwargs=kwargs, enabled=enabled
    )
    encoded = CODEC.encode_definition(definition)
    decoded = CODEC.decode_definition(encoded, name=NAME)
    assert CODEC.encode_definition(decoded) == encoded
    assert (decoded.task, decoded.args, decoded.kwargs, decoded.enabled) == (
        task,
        args,
        kwargs,
        enabled,
    )
    assert type(decoded.schedule) is type(sched)
