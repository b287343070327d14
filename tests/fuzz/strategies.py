"""Hypothesis strategies for hostile stored data: what any program with write access to the
store could leave there, well-formed or not.

Values are JSON-shaped but hostile: wrong types, huge and tiny numbers, NaN and infinities
(Python's ``json`` writes and reads them), odd unicode (lone surrogates, NUL, right-to-left
marks, emoji), deeply nested values, ``__type__`` tags that are unknown, misspelled, carry
wrong fields, or name importable callables (:mod:`fuzz.canary`). Texts are sometimes not
JSON at all, or JSON cut short.

Intervals (and bare numbers, which Celery reads as intervals) are drawn at one second or
more, under the minimum (``redbeat_min_interval``, 0.1 s: zero, negative, tiny; each must be
quarantined), or as non-numbers. Valid intervals under a second are left out: they are
legitimately published on every tick, which the "once per second" check cannot tell from a
hot loop.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fuzz.canary import EXECUTABLE_TAGS
from hypothesis import strategies as st

from redbeat_core.codec import make_converter

#: The tags RedBeat's codec knows (read from it: a new type is fuzzed as soon as it exists).
KNOWN_TAGS = make_converter().tags
#: Field names the known tags use, so that mutated tags hit the field checks.
TAG_FIELDS = (
    "every", "relative", "minute", "hour", "day_of_week", "day_of_month", "month_of_year",
    "freq", "dtstart", "interval", "wkst", "count", "until", "bysetpos", "bymonth",
    "bymonthday", "byyearday", "byeaster", "byweekno", "byweekday", "byhour", "byminute",
    "bysecond", "event", "lat", "lon", "clocked_time", "year", "month", "day", "second",
    "microsecond", "timezone", "n", "weekday",
)  # fmt: skip

ODD_CHARS = ["\x00", "\u202e", "\ufeff", "\U0001f600", "\udcff", "\ud800", "\n", "\\", '"']

#: Text with anything in it, lone surrogates included.
odd_text = st.text(st.characters(exclude_categories=()) | st.sampled_from(ODD_CHARS), max_size=12)
huge_ints = st.integers(min_value=-(10**30), max_value=10**30) | st.sampled_from(
    [2**63, -(2**63) - 1, 10**400]
)
any_floats = st.floats(allow_nan=True, allow_infinity=True)
numbers = huge_ints | any_floats | st.sampled_from([0, -1, 1e-9, 1e308, -0.0])
leaves = st.none() | st.booleans() | numbers | odd_text


def _tagged(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with a ``__type__`` tag: known, unknown or executable; fields from the
    known tags' names or odd ones, values from ``children``."""
    tags = st.sampled_from(KNOWN_TAGS) | odd_text | st.sampled_from([t for t, _ in EXECUTABLE_TAGS])
    fields = st.dictionaries(st.sampled_from(TAG_FIELDS) | odd_text, children, max_size=5)
    return st.builds(lambda tag, f: {**f, "__type__": tag}, tags, fields)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=4)
        | st.dictionaries(odd_text, children, max_size=4)
        | _tagged(children)
    )


#: Any JSON-shaped value, hostile leaves and tags included.
json_values = st.recursive(leaves, _containers, max_leaves=12)

#: Tags naming importable callables, with the fields that would make a call visible.
executable = st.sampled_from(EXECUTABLE_TAGS).map(lambda pair: {**pair[1], "__type__": pair[0]})


def interval_seconds() -> st.SearchStrategy[Any]:
    """An interval's ``every``: huge, infinite, NaN, under the minimum or of a wrong type
    (see the module's docstring for the gap between)."""
    return (
        st.floats(min_value=1, allow_nan=False, allow_infinity=True)
        | st.floats(max_value=0.09, allow_nan=False, allow_infinity=True)
        | st.integers(min_value=-(10**30), max_value=0)
        | st.integers(min_value=1, max_value=10**30)
        | st.just(math.nan)
        | st.just(-math.inf)
        | st.none()
        | st.booleans()
        | odd_text
        | st.lists(leaves, max_size=2)
    )


def datetimes_tagged() -> st.SearchStrategy[Any]:
    """A ``datetime`` tag with fields in or far out of range and odd time zones."""
    part = st.integers(min_value=-5, max_value=70) | huge_ints | any_floats | st.none()
    zones = (
        st.sampled_from(
            [
                "UTC",
                "Europe/Berlin",
                "Asia/Kolkata",
                "Mars/Olympus",
                "../../etc/passwd",
                "",
                "/etc/passwd",
            ]
        )
        | numbers
        | odd_text
    )
    return st.fixed_dictionaries(
        {
            "__type__": st.just("datetime"),
            "year": st.integers(min_value=-1, max_value=10001) | part,
            "month": part,
            "day": part,
            "hour": part,
            "minute": part,
            "second": part,
            "microsecond": part,
        },
        optional={"timezone": zones},
    )


def schedules() -> st.SearchStrategy[Any]:
    """A stored schedule: a well-formed known tag with hostile field values, an unknown or
    executable tag, a bare value, or anything."""
    interval = st.fixed_dictionaries(
        {"__type__": st.just("interval"), "every": interval_seconds()},
        optional={"relative": st.booleans() | leaves},
    )
    crontab_field = st.sampled_from(["*", "*/0", "61", "-1", "1-0", "*/1000000", "a"]) | leaves
    crontab = st.fixed_dictionaries(
        {
            "__type__": st.just("crontab"),
            "minute": crontab_field,
            "hour": crontab_field,
            "day_of_week": crontab_field,
            "day_of_month": crontab_field,
            "month_of_year": crontab_field,
        }
    )
    rrule = st.fixed_dictionaries(
        {
            "__type__": st.just("rrule"),
            "freq": st.integers(min_value=-2, max_value=9) | leaves,
            "dtstart": datetimes_tagged() | leaves,
            "interval": st.integers(min_value=-1, max_value=3) | leaves,
        },
        optional={
            "count": st.sampled_from([0, 1, 10**9]) | leaves,
            "until": datetimes_tagged() | leaves,
            "bymonth": st.sampled_from([2, [2], 13, []]) | leaves,
            "bymonthday": st.sampled_from([30, 31, [30, 31], 0, -40]) | leaves,
            "byhour": st.sampled_from([25, [], [0]]) | leaves,
            "bysecond": st.sampled_from([61, [59], []]) | leaves,
        },
    )
    solar = st.fixed_dictionaries(
        {
            "__type__": st.just("solar"),
            "event": st.sampled_from(["sunrise", "sunset", "noon", "dawn", "eclipse"]) | leaves,
            "lat": st.floats(min_value=-100, max_value=100) | leaves,
            "lon": st.floats(min_value=-200, max_value=200) | leaves,
        }
    )
    clocked = st.fixed_dictionaries(
        {"__type__": st.just("clocked"), "clocked_time": datetimes_tagged() | leaves}
    )
    bare = (
        st.floats(min_value=1, allow_infinity=True)
        | st.floats(max_value=0.09, allow_nan=False, allow_infinity=True)
        | st.just(math.nan)
        | st.integers()
        | odd_text
        | st.none()
    )
    return st.one_of(interval, crontab, rrule, solar, clocked, executable, _tagged(leaves), bare)


def definitions(name: str, task: str) -> st.SearchStrategy[Any]:
    """A ``definition`` object: the healthy template with keys kept, dropped or replaced by
    hostile values, plus unknown keys; or any JSON value at all."""
    template: dict[str, Any] = {
        "name": name,
        "task": task,
        "args": [name],
        "kwargs": {},
        "options": {},
        "schedule": {"__type__": "interval", "every": 30.0, "relative": False},
        "enabled": True,
    }
    hostile = {
        "name": odd_text | leaves,
        "task": odd_text | leaves | executable,
        "args": json_values | executable.map(lambda t: [t]),
        "kwargs": json_values | st.dictionaries(odd_text, json_values | executable, max_size=3),
        "options": json_values | st.dictionaries(odd_text, json_values, max_size=3),
        "schedule": schedules(),
        "enabled": leaves,
    }

    @st.composite
    def mutated(draw: st.DrawFn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, good in template.items():
            choice = draw(st.sampled_from(["keep", "keep", "drop", "hostile"]))
            if choice == "keep":
                out[key] = good
            elif choice == "hostile":
                out[key] = draw(hostile[key])
        out.update(draw(st.dictionaries(odd_text, json_values, max_size=2)))
        return out

    return mutated() | json_values


def metas() -> st.SearchStrategy[Any]:
    """A ``meta`` object, well-formed with hostile values, or anything."""
    meta = st.fixed_dictionaries(
        {},
        optional={
            "last_run_at": datetimes_tagged() | leaves | executable,
            "total_run_count": huge_ints | leaves,
        },
    )
    return meta | json_values


def policies() -> st.SearchStrategy[Any]:
    """A ``policy`` object, well-formed with hostile values, or anything."""
    policy = st.fixed_dictionaries({}, optional={"paused_reason": leaves | executable}).flatmap(
        lambda p: st.dictionaries(odd_text, json_values, max_size=2).map(lambda x: {**x, **p})
    )
    return policy | json_values


def as_text(value: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """How a stored field holds a value: its JSON (NaN and infinities as Python writes them,
    lone surrogates escaped), that JSON cut short or wrapped in deep nesting, or any text."""

    def dumps(obj: Any) -> str:
        return json.dumps(obj, allow_nan=True)

    encoded = value.map(dumps)
    cut = st.tuples(encoded, st.integers(min_value=0, max_value=40)).map(lambda p: p[0][: p[1]])
    depth = st.integers(min_value=1, max_value=200_000)
    nested = st.one_of(
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.integers(min_value=1, max_value=3000).map(
            lambda n: '{"__type__": "interval", "every": ' * n + "1" + "}" * n
        ),
    )
    return st.one_of(encoded, encoded, cut, nested, st.text(max_size=30))


def scores_due(now: float) -> st.SearchStrategy[float]:
    """Scores of entries that are due: far in the past, at -inf, just now."""
    return st.sampled_from([-math.inf, -1e18, 0.0, now - 1e9, now - 1, now - 0.001]) | st.floats(
        min_value=-1e15, max_value=now - 0.001
    )


def scores_later(now: float) -> st.SearchStrategy[float]:
    """Scores of entries that are not due (never claimed by the ticks of one example)."""
    return st.sampled_from([math.inf, 1e18, now + 3600]) | st.floats(
        min_value=now + 600, max_value=1e18
    )
