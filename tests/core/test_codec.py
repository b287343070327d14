"""The codec writes celery-redbeat 2.4.2's bytes and reads everything it writes.

The golden file holds what celery-redbeat itself stored for each case of
``tests/compat/make_golden.py`` (which regenerates it); the same cases are rebuilt here with
RedBeat's classes and compared both ways.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import cattrs
import pytest
from celery.schedules import BaseSchedule, crontab, schedule, solar
from dateutil.rrule import FR, MO, SU, weekday

from redbeat_core.codec import Codec, RedBeatConverter, make_converter
from redbeat_core.exceptions import EntryDecodeError
from redbeat_core.model import EntryDefinition, EntryMeta, EntryPolicy
from redbeat_core.schedules import clocked, rrule

TESTS = Path(__file__).resolve().parents[1]
GOLDEN_PATH = TESTS / "core" / "data" / "celery_redbeat_golden.json"


def _load_make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_golden", TESTS / "compat" / "make_golden.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_golden = _load_make_golden()
GOLDEN: dict[str, dict[str, str]] = {
    c["case"]: c for c in json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
}
SPECS: dict[str, dict[str, Any]] = {s["case"]: s for s in make_golden.build_cases(rrule)}
CASES = sorted(SPECS)


@pytest.fixture
def codec() -> Codec:
    return Codec()


def definition_of(spec: dict[str, Any]) -> EntryDefinition:
    # What ScheduleEntry makes of the arguments: args as given, kwargs/options None -> {}.
    return EntryDefinition(
        name=spec["name"],
        task=spec["task"],
        schedule=spec["schedule"],
        args=spec["args"],
        kwargs=spec["kwargs"] or {},
        options=spec["options"] or {},
        enabled=spec["enabled"],
    )


def canon(value: Any) -> Any:
    """A comparable form: datetimes by wall time, UTC offset and zone name (naive = UTC, as
    celery-redbeat stores them); schedules by their fields; tuples as lists; scalars typed."""
    if isinstance(value, datetime):
        key = "UTC" if value.tzinfo is None else getattr(value.tzinfo, "key", None)
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        wall = (value.year, value.month, value.day, value.hour, value.minute, value.second)
        return ("datetime", wall, value.microsecond, aware.utcoffset(), key)
    if isinstance(value, rrule):
        # celery-redbeat stores rrule datetimes as an instant plus a fixed UTC offset.
        moments = [
            None if dt is None else (dt.timestamp(), dt.utcoffset())
            for dt in (value.dtstart, value.until)
        ]
        fields = [getattr(value, name) for name in RRULE_FIELDS]
        return ("rrule", moments, canon(fields))
    if isinstance(value, crontab):
        return ("crontab", canon([getattr(value, f"_orig_{f}") for f in CRONTAB_FIELDS]))
    if isinstance(value, schedule):
        interval: Any = value
        return ("interval", interval.run_every, interval.relative)
    if isinstance(value, weekday):
        return ("weekday", value.weekday, value.n)
    if isinstance(value, list | tuple):
        return [canon(v) for v in value]
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    assert value is None or isinstance(value, str | int | float), value
    return (type(value).__name__, value)


CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
RRULE_FIELDS = (
    "freq",
    "interval",
    "wkst",
    "count",
    "bysetpos",
    "bymonth",
    "bymonthday",
    "byyearday",
    "byeaster",
    "byweekno",
    "byweekday",
    "byhour",
    "byminute",
    "bysecond",
)


def without_nth(spec: dict[str, Any]) -> dict[str, Any]:
    """The case as celery-redbeat reads back its own bytes: MO(+1) became MO."""
    old = spec["schedule"]
    days = [weekday(d.weekday) for d in old.byweekday]
    return {**spec, "schedule": rrule(old.freq, dtstart=old.dtstart, byweekday=days)}


# ------------------------------------------------------------------------------ golden data


def test_golden_file_has_every_case() -> None:
    assert sorted(GOLDEN) == CASES
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_encode_definition_is_byte_identical(codec: Codec, case: str) -> None:
    ours = codec.encode_definition(definition_of(SPECS[case]))
    expected = GOLDEN[case]["definition_json"]
    if case in make_golden.REDBEAT_EXTENDS:
        # celery-redbeat drops weekday.n (MO(+1) -> MO); RedBeat keeps it, in a form
        # celery-redbeat's decoder reads as MO(+1) (asserted by make_golden.py).
        for day, n in (("0", 1), ("4", -1)):
            old = f'{{"__type__": "weekday", "wkday": {day}}}'
            assert old in expected
            expected = expected.replace(old, f'{{"__type__": "weekday", "wkday": {day}, "n": {n}}}')
    assert ours == expected


@pytest.mark.parametrize("case", CASES)
def test_encode_meta_is_byte_identical(codec: Codec, case: str) -> None:
    spec = SPECS[case]
    meta = EntryMeta(last_run_at=spec["last_run_at"], total_run_count=spec["total_run_count"])
    assert codec.encode_meta(meta) == GOLDEN[case]["meta_json"]
    # save() writes only last_run_at; the generic dumps gives the same bytes for that too.
    assert codec.dumps({"last_run_at": spec["last_run_at"]}) == GOLDEN[case]["save_meta_json"]


@pytest.mark.parametrize("case", CASES)
def test_decode_definition_gives_the_original(codec: Codec, case: str) -> None:
    spec = SPECS[case]
    if case in make_golden.REDBEAT_EXTENDS:
        spec = without_nth(spec)
    expected = definition_of(spec)

    decoded = codec.decode_definition(GOLDEN[case]["definition_json"], name="ignored")

    assert decoded.name == expected.name
    assert decoded.task == expected.task
    assert decoded.enabled is expected.enabled
    assert type(decoded.schedule) is type(expected.schedule)
    assert decoded.schedule == expected.schedule
    assert canon(decoded.schedule) == canon(expected.schedule)
    assert canon(decoded.args) == canon(expected.args)
    assert canon(decoded.kwargs) == canon(expected.kwargs)
    assert canon(decoded.options) == canon(expected.options)


@pytest.mark.parametrize("case", CASES)
def test_decode_meta_gives_the_original(codec: Codec, case: str) -> None:
    spec = SPECS[case]
    meta = codec.decode_meta(GOLDEN[case]["meta_json"], name=case)
    assert canon(meta.last_run_at) == canon(spec["last_run_at"])
    assert meta.total_run_count == spec["total_run_count"]
    saved = codec.decode_meta(GOLDEN[case]["save_meta_json"], name=case)
    assert canon(saved.last_run_at) == canon(spec["last_run_at"])
    assert saved.total_run_count == 0


@pytest.mark.parametrize("case", CASES)
def test_read_then_write_matches_celery_redbeat(codec: Codec, case: str) -> None:
    golden = GOLDEN[case]
    for raw, reencoded in (
        (golden["definition_json"], golden["reencoded_definition_json"]),
        (golden["meta_json"], golden["reencoded_meta_json"]),
    ):
        assert codec.dumps(codec.loads(raw)) == reencoded
    definition = codec.decode_definition(golden["definition_json"], name=case)
    assert codec.encode_definition(definition) == golden["reencoded_definition_json"]


def test_unknown_type_in_arguments_stays_a_dict_with_its_tag_moved_last(codec: Codec) -> None:
    raw = GOLDEN["unknown_type_in_kwargs"]["definition_json"]
    payload = codec.decode_definition(raw, name="x").kwargs["payload"]
    assert payload == {"__type__": "mystery", "a": 1, "b": [1, 2]}
    assert list(payload) == ["a", "b", "__type__"]  # what celery-redbeat's decoder does


# ------------------------------------------------------------------------------ datetimes


@pytest.mark.parametrize(
    ("label", "tz_type", "key"),
    [
        ("naive", ZoneInfo, "UTC"),
        ("utc", timezone, None),
        ("zoneinfo_utc", ZoneInfo, "UTC"),
        ("zoneinfo_paris", ZoneInfo, "Europe/Paris"),
        ("fixed_plus_0530", timezone, None),
        ("fixed_minus_0330", timezone, None),
        ("dateutil_tzfile", timezone, None),
    ],
)
def test_datetime_timezone_forms(codec: Codec, label: str, tz_type: type, key: str | None) -> None:
    original = make_golden.DATETIMES[label]
    back = codec.loads(codec.dumps(original))
    assert isinstance(back.tzinfo, tz_type)
    assert getattr(back.tzinfo, "key", None) == key
    assert back.replace(tzinfo=None) == original.replace(tzinfo=None)
    assert back.utcoffset() == (original.utcoffset() or timedelta(0))


def test_datetime_decoding_number_is_offset_seconds_and_default_is_utc(codec: Codec) -> None:
    fields = '"__type__": "datetime", "year": 2024, "month": 1, "day": 2, "hour": 3'
    offset = codec.loads(f'{{{fields}, "minute": 4, "timezone": -12600}}')
    assert offset == datetime(2024, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-3.5)))
    assert offset.utcoffset() == timedelta(hours=-3.5)
    default = codec.loads(f"{{{fields}}}")
    assert default.tzinfo == ZoneInfo("UTC")
    assert (default.minute, default.second, default.microsecond) == (0, 0, 0)


def test_loads_accepts_utf8_bytes(codec: Codec) -> None:
    raw = GOLDEN["unicode"]["definition_json"].encode()
    assert codec.decode_definition(raw, name="x").args == ["héllo", "日本語", "emoji 🎉"]


# ------------------------------------------------------------------------------ new types


def test_weekday_nth_is_kept(codec: Codec) -> None:
    assert codec.dumps(MO) == '{"__type__": "weekday", "wkday": 0}'
    assert codec.dumps(FR(-2)) == '{"__type__": "weekday", "wkday": 4, "n": -2}'
    assert codec.loads(codec.dumps(FR(-2))) == FR(-2)
    assert codec.loads(codec.dumps(SU)) == SU


def test_solar_round_trip(codec: Codec) -> None:
    pytest.importorskip("ephem", reason="solar schedules need celery[solar]")
    sched = solar("sunset", 51.5, -0.12)
    definition = EntryDefinition(name="s", task="t", schedule=sched)
    raw = codec.encode_definition(definition)
    assert '"schedule": {"__type__": "solar", "event": "sunset", "lat": 51.5, "lon": -0.12}' in raw
    back = codec.decode_definition(raw, name="s").schedule
    assert isinstance(back, solar)
    assert (back.event, back.lat, back.lon) == ("sunset", 51.5, -0.12)
    assert back == sched


def test_solar_without_ephem_names_the_extra(codec: Codec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ephem", None)  # makes `import ephem` fail
    raw = _definition(schedule='{"__type__": "solar", "event": "dawn_civil", "lat": 1, "lon": 2}')
    with pytest.raises(EntryDecodeError, match=r"ephem.*celery\[solar\]"):
        codec.decode_definition(raw, name="s")


@pytest.mark.parametrize(
    "when",
    [
        datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("Asia/Tokyo")),
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_clocked_round_trip(codec: Codec, when: datetime) -> None:
    definition = EntryDefinition(name="once", task="t", schedule=clocked(when), args=None)
    raw = codec.encode_definition(definition)
    inner = codec.dumps(when)
    assert f'"schedule": {{"__type__": "clocked", "clocked_time": {inner}}}' in raw
    back = codec.decode_definition(raw, name="once")
    assert back == definition
    assert back.schedule.clocked_time.utcoffset() == when.utcoffset()
    assert canon(back.schedule.clocked_time) == canon(when)


def test_policy_round_trip_keeps_unknown_keys(codec: Codec) -> None:
    assert codec.encode_policy(EntryPolicy()) == "{}"
    assert codec.decode_policy(None) == EntryPolicy()
    assert codec.decode_policy("") == EntryPolicy()
    when = datetime(2024, 1, 1, tzinfo=UTC)
    policy = EntryPolicy(paused_reason="maintenance", extra={"retries_cap": 5, "until": when})
    raw = codec.encode_policy(policy)
    assert raw.startswith('{"paused_reason": "maintenance", "retries_cap": 5, "until": {"__type__"')
    assert codec.decode_policy(raw, name="p") == policy
    future = codec.decode_policy('{"misfire": "skip", "overlap2": "x", "x": [1]}', name="p")
    assert future == EntryPolicy(misfire="skip", extra={"overlap2": "x", "x": [1]})
    assert codec.encode_policy(future) == '{"misfire": "skip", "overlap2": "x", "x": [1]}'


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ('{"misfire": "sometimes"}', "misfire must be one of 'run_once', 'skip', 'run_all'"),
        ('{"jitter": -1}', "jitter must be a finite number of seconds >= 0"),
        ('{"starting_deadline": 0}', "starting_deadline must be a finite number of seconds > 0"),
        ('{"max_runs": 0}', "max_runs must be a whole number >= 1"),
        ('{"start_at": "tomorrow"}', "start_at must be an aware datetime or Unix seconds"),
    ],
)
def test_policy_with_a_bad_setting_is_refused_naming_it(codec: Codec, raw: str, says: str) -> None:
    with pytest.raises(EntryDecodeError, match=re.escape(says)):
        codec.decode_policy(raw, name="nightly")


def test_a_time_in_the_repeated_hour_keeps_its_fold(codec: Codec) -> None:
    """01:30 EST on New York's fall-back night is an hour after 01:30 EDT: ``fold`` is kept
    (written only when set, so every other datetime is stored as celery-redbeat writes it)."""
    zone = ZoneInfo("America/New_York")
    second = datetime(2024, 11, 3, 1, 30, tzinfo=zone, fold=1)
    first = second.replace(fold=0)
    assert second.timestamp() - first.timestamp() == 3600
    assert "fold" not in codec.dumps(first)
    assert json.loads(codec.dumps(second))["fold"] == 1
    assert codec.loads(codec.dumps(second)).timestamp() == second.timestamp()
    with pytest.raises(EntryDecodeError, match="fold must be 0 or 1"):
        codec.decode_meta(
            '{"last_run_at": {"__type__": "datetime", "year": 2024, "month": 1, "day": 1, '
            '"fold": 2}}',
            name="x",
        )


def test_policy_settings_round_trip(codec: Codec) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    policy = EntryPolicy(
        misfire="run_all", starting_deadline=30, jitter=2.5, start_at=start, max_runs=3
    )
    assert policy.start_at == start.timestamp()  # an aware datetime is stored as Unix seconds
    raw = codec.encode_policy(policy)
    assert json.loads(raw) == {
        "misfire": "run_all",
        "starting_deadline": 30,
        "jitter": 2.5,
        "start_at": start.timestamp(),
        "max_runs": 3,
    }
    assert codec.decode_policy(raw, name="p") == policy


def test_policy_extra_cannot_shadow_a_field() -> None:
    with pytest.raises(ValueError, match="paused_reason"):
        EntryPolicy(extra={"paused_reason": "x"})


# ------------------------------------------------------------------------------ meta forms


@pytest.mark.parametrize("raw", [None, "", b"", "{}", '{"last_run_at": null}'])
def test_meta_never_run_forms(codec: Codec, raw: str | bytes | None) -> None:
    assert codec.decode_meta(raw, name="m") == EntryMeta()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"last_run_at": "2024-01-01"}', "last_run_at must be a datetime, got str"),
        ('{"last_run_at": null, "total_run_count": "3"}', "total_run_count must be an integer"),
        ('{"last_run_at": null, "total_run_count": true}', "total_run_count must be an integer"),
        ("[]", "meta must be a JSON object, got list"),
        ("{", "meta is not valid JSON"),
    ],
)
def test_meta_errors(codec: Codec, raw: str, reason: str) -> None:
    with pytest.raises(EntryDecodeError) as info:
        codec.decode_meta(raw, name="m1")
    assert info.value.name == "m1"
    assert reason in info.value.reason


# ------------------------------------------------------------------------------ definition errors

SCHEDULE = '{"__type__": "interval", "every": 5.0, "relative": false}'


def _definition(**fields: str) -> str:
    base = {"name": '"e"', "task": '"t"', "args": "[]", "kwargs": "{}", "schedule": SCHEDULE}
    base.update(fields)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in base.items() if v != "OMIT") + "}"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"name": "e", "task": ', "definition is not valid JSON: Expecting value"),
        (b"\xff\xfe\x00", "definition is not valid JSON"),
        ("[1, 2]", "definition must be a JSON object, got list"),
        ('"just a string"', "definition must be a JSON object, got str"),
        (_definition(task="OMIT"), "missing task"),
        (_definition(task="null"), "missing task"),
        (_definition(task="42"), "task must be a string, got int"),
        (_definition(name="7"), "name must be a string, got int"),
        (
            _definition(schedule='{"__type__": "foo", "x": 1}'),
            "unknown schedule type 'foo': install the plugin that provides it",
        ),
        (_definition(schedule="OMIT"), "missing schedule"),
        (_definition(schedule='"every minute"'), "schedule must be a schedule object, got str"),
        (
            _definition(
                schedule=json.dumps({"__type__": "datetime", "year": 2024, "month": 1, "day": 1})
            ),
            "schedule must be a schedule object, got datetime",
        ),
        (_definition(schedule='{"every": 5}'), "schedule must be a schedule object, got dict"),
        (
            _definition(schedule='{"__type__": "interval"}'),
            "invalid 'interval' value: missing 'every'",
        ),
        (
            _definition(schedule='{"__type__": "interval", "every": "5"}'),
            "every must be a number of seconds",
        ),
        (
            _definition(schedule='{"__type__": "crontab", "minute": "99"}'),
            "invalid 'crontab' value",
        ),
        (
            _definition(schedule='{"__type__": "crontab", "nowfun": "os.system"}'),
            "unknown field(s) 'nowfun'",
        ),
        (
            _definition(schedule='{"__type__": "rrule", "freq": "FORTNIGHTLY"}'),
            "unknown rrule freq 'FORTNIGHTLY'",
        ),
        (
            _definition(schedule='{"__type__": "clocked", "clocked_time": "tomorrow"}'),
            "clocked_time must be a datetime, got str",
        ),
        (
            _definition(
                args='[{"__type__": "datetime", "year": 2024, "month": 1, "day": 1, '
                '"timezone": "Mars/Olympus"}]'
            ),
            "invalid 'datetime' value",
        ),
        (
            _definition(args='[{"__type__": "weekday", "wkday": 9}]'),
            "wkday must be an integer from 0 (Monday) to 6",
        ),
        (_definition(args='"1, 2"'), "args must be a list, got str"),
        (_definition(kwargs="[1]"), "kwargs must be an object, got list"),
        (_definition(options="7"), "options must be an object, got int"),
        (_definition(enabled='"yes"'), "enabled must be true or false, got str"),
    ],
)
def test_definition_errors_are_clear(codec: Codec, raw: str | bytes, reason: str) -> None:
    with pytest.raises(EntryDecodeError) as info:
        codec.decode_definition(raw, name="bad-entry")
    assert info.value.name == "bad-entry"
    assert reason in info.value.reason
    assert "\n" not in info.value.reason
    assert str(info.value).startswith("entry 'bad-entry': ")


@pytest.mark.parametrize("raw", [None, "", b""])
def test_missing_definition(codec: Codec, raw: str | bytes | None) -> None:
    with pytest.raises(EntryDecodeError, match="no definition stored"):
        codec.decode_definition(raw, name="gone")


def test_lenient_forms_celery_redbeat_accepts(codec: Codec) -> None:
    raw = _definition(
        name="OMIT", args="null", kwargs="null", options="OMIT", enabled="0", schedule="30"
    )
    decoded = codec.decode_definition(raw, name="from-key")
    assert decoded == EntryDefinition(
        name="from-key", task="t", schedule=schedule(30), args=None, enabled=False
    )
    assert isinstance(decoded.schedule, schedule)
    assert codec.decode_definition(_definition(enabled="OMIT"), name="e").enabled is True


def test_loads_raises_value_error(codec: Codec) -> None:
    with pytest.raises(ValueError, match="invalid 'interval' value"):
        codec.loads('{"__type__": "interval", "every": []}')


# ------------------------------------------------------------------------------ encoding errors


class FortnightlySchedule(BaseSchedule):  # type: ignore[misc,unused-ignore]
    def __init__(self, start: datetime) -> None:
        super().__init__()
        self.start = start

    def is_due(self, last_run_at: datetime) -> Any:  # pragma: no cover - never run
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FortnightlySchedule) and other.start == self.start

    __hash__ = None  # type: ignore[assignment]


def test_encoding_unknown_schedule_names_type_and_hook(codec: Codec) -> None:
    definition = EntryDefinition(
        name="f", task="t", schedule=FortnightlySchedule(datetime(2024, 1, 1, tzinfo=UTC))
    )
    with pytest.raises(TypeError) as info:
        codec.encode_definition(definition)
    message = str(info.value)
    assert "FortnightlySchedule" in message
    assert "redbeat_configure_converter" in message


def test_encoding_unsupported_argument_raises_type_error(codec: Codec) -> None:
    with pytest.raises(TypeError, match=r"builtins\.set"):
        codec.dumps({"args": [{1, 2}]})


# ------------------------------------------------------------------------------ plugin types


def _build_fortnightly(fields: dict[str, Any]) -> FortnightlySchedule:
    return FortnightlySchedule(fields["start"])


def _register_fortnightly(codec: Codec) -> None:
    codec.register_type(
        "myplugin.fortnightly",
        FortnightlySchedule,
        lambda s: {"start": s.start},
        _build_fortnightly,
    )


def test_plugin_registered_tag_works_both_ways(codec: Codec) -> None:
    _register_fortnightly(codec)
    start = datetime(2024, 1, 1, 8, tzinfo=ZoneInfo("Europe/Paris"))
    definition = EntryDefinition(name="f", task="t", schedule=FortnightlySchedule(start), args=[])

    raw = codec.encode_definition(definition)

    stored = json.loads(raw)["schedule"]
    assert list(stored) == ["__type__", "start"]
    assert stored["__type__"] == "myplugin.fortnightly"
    assert stored["start"]["timezone"] == "Europe/Paris"
    back = codec.decode_definition(raw, name="f")
    assert back == definition
    assert back.schedule.start.tzinfo == ZoneInfo("Europe/Paris")

    # Another scheduler's codec never saw the plugin.
    with pytest.raises(EntryDecodeError, match=r"unknown schedule type 'myplugin\.fortnightly'"):
        Codec().decode_definition(raw, name="f")


def test_plugin_structure_failure_is_a_decode_error(codec: Codec) -> None:
    _register_fortnightly(codec)
    raw = _definition(schedule='{"__type__": "myplugin.fortnightly"}')
    with pytest.raises(EntryDecodeError, match=r"invalid 'myplugin.fortnightly' value: 'start'"):
        codec.decode_definition(raw, name="f")


def test_a_tag_or_class_is_registered_once(codec: Codec) -> None:
    with pytest.raises(
        ValueError, match=r"'crontab' is already registered for celery\.schedules\.crontab"
    ):
        codec.register_type("crontab", FortnightlySchedule, lambda s: {}, _build_fortnightly)
    with pytest.raises(ValueError, match="already registered as __type__ 'interval'"):
        codec.register_type("interval2", schedule, lambda s: {}, lambda f: None)
    with pytest.raises(ValueError, match="non-empty string"):
        codec.register_type("", FortnightlySchedule, lambda s: {}, _build_fortnightly)


def test_unstructure_must_not_return_the_tag(codec: Codec) -> None:
    codec.register_type("bad", FortnightlySchedule, lambda s: {"__type__": "x"}, _build_fortnightly)
    with pytest.raises(ValueError, match="must not return '__type__'"):
        codec.dumps(FortnightlySchedule(datetime(2024, 1, 1, tzinfo=UTC)))


def test_subclasses_use_the_nearest_registered_tag(codec: Codec) -> None:
    class MyInterval(schedule):  # type: ignore[misc,unused-ignore]
        pass

    assert (
        codec.dumps(MyInterval(10)) == '{"__type__": "interval", "every": 10.0, "relative": false}'
    )


# ------------------------------------------------------------------------------ the converter


def test_converter_is_private_and_carries_the_tags() -> None:
    converter = make_converter()
    assert isinstance(converter, cattrs.Converter)
    assert converter is not cattrs.global_converter
    assert converter.tags == (
        "datetime",
        "interval",
        "crontab",
        "rrule",
        "weekday",
        "solar",
        "clocked",
        "redbeat.crontab",
    )
    assert converter.unstructure(crontab(minute=5)) == {
        "__type__": "crontab",
        "minute": 5,
        "hour": "*",
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
    }
    assert converter.unstructure(EntryMeta(total_run_count=2)) == {
        "last_run_at": None,
        "total_run_count": 2,
    }
    assert cattrs.global_converter.unstructure(crontab(minute=5)) != converter.unstructure(
        crontab(minute=5)
    )


def test_converter_copy_keeps_the_tags() -> None:
    converter = make_converter()
    converter.register_type("x.f", FortnightlySchedule, lambda s: {}, _build_fortnightly)
    copied = converter.copy()
    assert isinstance(copied, RedBeatConverter)
    assert copied.tags == converter.tags
    assert copied.tag_for(FortnightlySchedule) is converter.tag_for(FortnightlySchedule)


def test_codecs_do_not_share_registrations() -> None:
    first, second = Codec(), Codec()
    _register_fortnightly(first)
    assert first.converter.tag_named("myplugin.fortnightly") is not None
    assert second.converter.tag_named("myplugin.fortnightly") is None
