"""Regenerate tests/core/data/celery_redbeat_golden.json: what celery-redbeat 2.4.2 stores.

Run it in a venv that has celery-redbeat (never RedBeat itself) installed::

    uv venv -p 3.11 /tmp/crb-venv
    VIRTUAL_ENV=/tmp/crb-venv uv pip install celery-redbeat==2.4.2 celery==5.7.0
    /tmp/crb-venv/bin/python tests/compat/make_golden.py

Each case builds a real ``RedBeatSchedulerEntry`` and captures the bytes its ``save()`` and
``_next_instance()`` write (through a fake client: no server needed). ``build_cases`` is shared
with tests/core/test_codec.py, which builds the same cases with RedBeat's own classes; so it
imports nothing from celery-redbeat or RedBeat, and the rrule class is passed in.

Recorded per case:

- ``definition_json``: the ``definition`` field written by ``save()``.
- ``save_meta_json``: the ``meta`` field written by ``save()`` (``{"last_run_at": ...}`` only).
- ``meta_json``: the ``meta`` field written by ``_next_instance()`` (with ``total_run_count``).
- ``reencoded_definition_json`` / ``reencoded_meta_json``: celery-redbeat's decoder then encoder
  applied to the above, i.e. what it writes back after reading the entry.
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from celery.schedules import crontab, schedule
from dateutil import tz as dateutil_tz
from dateutil.rrule import FR, MO, MONTHLY, SU, WE, WEEKLY, YEARLY

GOLDEN = Path(__file__).resolve().parents[1] / "core" / "data" / "celery_redbeat_golden.json"

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))
MINUS_0330 = timezone(timedelta(hours=-3, minutes=-30))

#: The same instant-ish moments in every timezone form celery-redbeat writes.
DATETIMES: dict[str, datetime] = {
    "naive": datetime(2024, 3, 10, 1, 2, 3),
    "naive_micro": datetime(2024, 3, 10, 1, 2, 3, 456789),
    "utc": datetime(2024, 3, 10, 1, 2, 3, tzinfo=UTC),
    "zoneinfo_utc": datetime(2024, 3, 10, 1, 2, 3, tzinfo=ZoneInfo("UTC")),
    "zoneinfo_paris": datetime(2024, 7, 1, 12, 0, 0, 1, tzinfo=PARIS),
    "zoneinfo_new_york_dst_gap_day": datetime(2024, 3, 10, 5, 0, tzinfo=NEW_YORK),
    "fixed_plus_0530": datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=PLUS_0530),
    "fixed_minus_0330": datetime(2024, 1, 1, 0, 0, tzinfo=MINUS_0330),
    "dateutil_tzfile": datetime(2024, 1, 15, 8, 30, tzinfo=dateutil_tz.gettz("Europe/Berlin")),
    "dateutil_tzutc": datetime(2024, 1, 15, 8, 30, tzinfo=dateutil_tz.tzutc()),
}

#: Cases whose celery-redbeat bytes RedBeat deliberately improves on (see test_codec.py).
REDBEAT_EXTENDS = {"rrule_byweekday_nth": "weekday n"}


def _case(name: str, schedule_: Any, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "case": name,
        "name": fields.pop("entry_name", name),
        "task": fields.pop("task", "tasks.add"),
        "schedule": schedule_,
        "args": fields.pop("args", [1, 2]),
        "kwargs": fields.pop("kwargs", {}),
        "options": fields.pop("options", {}),
        "enabled": fields.pop("enabled", True),
        "last_run_at": fields.pop("last_run_at", datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        "total_run_count": fields.pop("total_run_count", 3),
    }
    assert not fields, fields
    return spec


def build_cases(rrule: type) -> list[dict[str, Any]]:
    """Every case, with ``rrule`` the rrule class of the side that encodes or compares."""
    utc = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    cases = [
        # ---- interval
        _case("interval_seconds", schedule(30)),
        _case("interval_float", schedule(12.5)),
        _case("interval_subsecond", schedule(timedelta(milliseconds=250))),
        _case("interval_days", schedule(timedelta(days=400, seconds=1))),
        _case("interval_relative", schedule(timedelta(hours=1), relative=True)),
        _case("interval_relative_truthy", schedule(60, relative=1)),  # type: ignore[arg-type,unused-ignore]
        # ---- crontab
        _case("crontab_default", crontab()),
        _case("crontab_strings", crontab(minute="*/15", hour="9-17", day_of_week="mon-fri")),
        _case("crontab_ints", crontab(minute=0, hour=3, day_of_month=1, month_of_year=6)),
        _case("crontab_lists", crontab(minute=[0, 30], hour=[1, 13], day_of_week=[0, 6])),
        _case("crontab_day_of_week_zero", crontab(minute=5, day_of_week=0)),
        # ---- rrule
        _case("rrule_daily_str_freq", rrule("DAILY", dtstart=utc)),
        _case("rrule_minutely_count", rrule("minutely", dtstart=utc, interval=15, count=4)),
        _case(
            "rrule_zoneinfo_dtstart_until",
            rrule(
                WEEKLY,
                dtstart=datetime(2024, 3, 1, 9, 30, tzinfo=PARIS),
                until=datetime(2024, 9, 1, 9, 30, tzinfo=PARIS),
                byweekday=[MO, WE, FR],
                byhour=[9, 18],
                byminute=30,
                bysecond=[0],
            ),
        ),
        _case(
            "rrule_fixed_offsets",
            rrule(
                MONTHLY,
                dtstart=datetime(2024, 1, 1, 6, 0, tzinfo=PLUS_0530),
                until=datetime(2025, 1, 1, 0, 0, tzinfo=MINUS_0330),
                bymonthday=(1, 15, -1),
                bysetpos=[1, -1],
            ),
        ),
        _case("rrule_naive_dtstart", rrule("HOURLY", dtstart=datetime(2024, 2, 29, 23, 0))),
        _case(
            "rrule_yearly_misc",
            rrule(
                YEARLY,
                dtstart=utc,
                wkst=SU,
                bymonth=[2, 8],
                byyearday=[1, 100, -1],
                byweekno=[1, 20],
                byweekday=(0, 4),
            ),
        ),
        _case("rrule_byeaster", rrule(YEARLY, dtstart=utc, byeaster=[0, -2], wkst=0)),
        _case("rrule_byweekday_nth", rrule(MONTHLY, dtstart=utc, byweekday=[MO(+1), FR(-1)])),
        # ---- datetimes nested in args, kwargs and options, in every timezone form
        *(
            _case(
                f"datetime_{label}",
                schedule(60),
                args=[value, [value], {"when": value}],
                kwargs={"at": value, "nested": {"list": [value, 1, None]}},
                options={"eta": value},
                last_run_at=value,
            )
            for label, value in DATETIMES.items()
        ),
        # ---- arguments
        _case("args_none", schedule(5), args=None),
        _case("args_empty_tuple", schedule(5), args=()),
        _case("args_empty_list", schedule(5), args=[]),
        _case("args_tuple", schedule(5), args=(1, "two", 3.5, True, None)),
        _case("kwargs_none_options_none", schedule(5), kwargs=None, options=None),
        _case(
            "options_typical",
            crontab(minute=1),
            options={"queue": "beat", "priority": 7, "expires": 30.0, "headers": {"h": 1}},
        ),
        _case(
            "unicode",
            schedule(10),
            entry_name="tâche-ünïcode-✓ 日本",
            task="tâches.ajouter",
            args=["héllo", "日本語", "emoji 🎉"],
            kwargs={"ключ": "значение", 'quote"back\\slash': "tab\tnewline\n"},
        ),
        _case(
            "unknown_type_in_kwargs",
            schedule(10),
            kwargs={"payload": {"__type__": "mystery", "a": 1, "b": [1, 2]}},
        ),
        _case("numbers", schedule(10), args=[0, -1, 1.0, 1e20, 2**70, 0.1, -0.0]),
        _case("disabled", crontab(hour=4), enabled=False),
        # ---- meta forms
        _case("meta_never_run", schedule(10), last_run_at=None, total_run_count=0),
        _case("meta_first_run", schedule(10), total_run_count=1),
        _case("meta_many_runs", schedule(10), total_run_count=123456),
    ]
    return cases


# ------------------------------------------------------------------------------------ generation


class _FakePipeline:
    def __init__(self, writes: list[tuple[Any, ...]]) -> None:
        self.writes = writes

    def __enter__(self) -> _FakePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def hset(self, key: str, field: str, value: str) -> None:
        self.writes.append(("hset", field, value))

    def hsetnx(self, key: str, field: str, value: str) -> None:
        self.writes.append(("hsetnx", field, value))

    def zadd(self, key: str, mapping: dict[str, float]) -> None:
        self.writes.append(("zadd", mapping))

    def execute(self) -> list[Any]:
        return []


class _FakeRedis:
    def __init__(self) -> None:
        self.writes: list[tuple[Any, ...]] = []

    def pipeline(self) -> _FakePipeline:
        return _FakePipeline(self.writes)


def _written(fake: _FakeRedis, command: str, field: str) -> str:
    found = [w[2] for w in fake.writes if w[0] == command and w[1] == field]
    assert len(found) == 1, (command, field, fake.writes)
    return str(found[0])


def generate() -> list[dict[str, Any]]:
    from importlib.metadata import version

    from celery import Celery

    if version("celery-redbeat") != "2.4.2":
        sys.exit("make_golden.py needs celery-redbeat 2.4.2 installed (not RedBeat)")

    from dateutil.rrule import weekday

    # celery-redbeat's modules (imported by name: this file is type-checked without them).
    decoder = importlib.import_module("redbeat.decoder")
    RedBeatJSONDecoder, RedBeatJSONEncoder = decoder.RedBeatJSONDecoder, decoder.RedBeatJSONEncoder
    RedBeatSchedulerEntry = importlib.import_module("redbeat.schedulers").RedBeatSchedulerEntry
    rrule = importlib.import_module("redbeat.schedules").rrule

    # celery-redbeat reads RedBeat's lossless weekday form (see REDBEAT_EXTENDS) correctly.
    extended = '{"__type__": "weekday", "wkday": 0, "n": 1}'
    assert json.loads(extended, cls=RedBeatJSONDecoder) == weekday(0, 1)

    app = Celery("golden", set_as_current=True)
    app.conf.update(broker_url="memory://", redbeat_redis_url="redis://localhost:1/0")

    def reencode(raw: str) -> str:
        return json.dumps(json.loads(raw, cls=RedBeatJSONDecoder), cls=RedBeatJSONEncoder)

    out = []
    for spec in build_cases(rrule):
        fields = {k: spec[k] for k in ("name", "task", "schedule", "args", "kwargs", "options")}
        last_run_at, count = spec["last_run_at"], spec["total_run_count"]

        fake = _FakeRedis()
        app.redbeat_redis = fake  # type: ignore[attr-defined,unused-ignore]
        entry = RedBeatSchedulerEntry(
            app=app, enabled=spec["enabled"], last_run_at=last_run_at, **fields
        )
        entry.last_run_at = last_run_at  # ScheduleEntry turns None into "now"
        entry.save()
        definition_json = _written(fake, "hset", "definition")
        save_meta_json = _written(fake, "hsetnx", "meta")

        if last_run_at is None:
            # _next_instance always stamps a run, so write the never-run form directly.
            meta = {"last_run_at": None, "total_run_count": count}
            meta_json = json.dumps(meta, cls=RedBeatJSONEncoder)
        else:
            fake.writes.clear()
            entry.total_run_count = count - 1
            entry._next_instance(last_run_at=last_run_at)
            meta_json = _written(fake, "hset", "meta")

        out.append(
            {
                "case": spec["case"],
                "definition_json": definition_json,
                "meta_json": meta_json,
                "save_meta_json": save_meta_json,
                "reencoded_definition_json": reencode(definition_json),
                "reencoded_meta_json": reencode(meta_json),
            }
        )
    return out


def main() -> None:
    cases = generate()
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(cases, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {GOLDEN}")


if __name__ == "__main__":
    main()
