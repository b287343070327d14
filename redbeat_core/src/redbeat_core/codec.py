"""JSON for stored entries: byte for byte what celery-redbeat 2.x writes, and all it can read.

Objects JSON has no type for are written as ``{"__type__": TAG, ...fields}``, as celery-redbeat's
``RedBeatJSONEncoder`` does: ``datetime``, ``interval`` (``celery.schedules.schedule``),
``crontab``, ``rrule``, ``weekday``, and, new in RedBeat, ``solar`` and ``clocked``. Tags are
registered on a private :class:`RedBeatConverter` (a :class:`cattrs.Converter`) held by the
scheduler's :class:`Codec`; a plugin adds its own types from the ``redbeat_configure_converter``
hook::

    @hookimpl
    def redbeat_configure_converter(codec):
        codec.register_type("myplugin.every_other_day", EveryOtherDay, unstructure, structure)

``unstructure(obj)`` returns the fields as a dict (values may be any object the codec can write,
datetimes included); ``structure(fields)`` gets them back, nested tagged objects already decoded,
and builds the object. Neither sees ``__type__``.

Decoding never executes anything (no pickle, no eval); a stored value it cannot read raises
:class:`~redbeat_core.exceptions.EntryDecodeError` with the entry's name and a short reason.
"""

from __future__ import annotations

import calendar
import contextvars
import functools
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Self, TypeVar
from zoneinfo import ZoneInfo

import attrs
import cattrs
from celery.schedules import crontab, schedule, solar
from dateutil.rrule import weekday

from redbeat_core.exceptions import EntryDecodeError
from redbeat_core.model import POLICY_FIELDS, EntryDefinition, EntryMeta, EntryPolicy
from redbeat_core.policy import policy_problem
from redbeat_core.schedules import clocked, rrule
from redbeat_core.schedules import crontab as zoned_crontab

__all__ = [
    "Codec",
    "RedBeatConverter",
    "TypeTag",
    "UnencodableError",
    "configure_converter",
    "from_timestamp",
    "make_converter",
    "to_timestamp",
    "utcoffset_minutes",
]

Unstructure = Callable[[Any], Mapping[str, Any]]
Structure = Callable[[dict[str, Any]], Any]

_TYPE = "__type__"
_T = TypeVar("_T")

Clock = Callable[[], datetime]
#: The clock the schedules decoded right now must read (see :meth:`Codec.decode_definition`).
_decode_clock: contextvars.ContextVar[Clock | None] = contextvars.ContextVar(
    "redbeat_decode_clock", default=None
)


class UnencodableError(TypeError):
    """An object the codec has no ``__type__`` tag for; ``value`` is that object (the entry API
    names the field holding it)."""

    def __init__(self, message: str, value: object) -> None:
        super().__init__(message)
        self.value = value


class _DecodeFailure(ValueError):
    """A stored value cannot be decoded; the message is the human reason."""


@attrs.frozen
class TypeTag:
    """One ``__type__`` tag: the class it stands for and the functions that convert it."""

    tag: str
    cls: type
    unstructure: Unstructure
    structure: Structure


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class RedBeatConverter(cattrs.Converter):
    """A private cattrs converter that also knows the ``__type__`` tags of the stored JSON.

    :meth:`register_type` is how built-in and plugin types are added; it also registers cattrs
    hooks, so ``converter.unstructure(obj)`` gives the tagged dict that is stored.
    """

    __slots__ = ("_by_class", "_by_tag")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_tag: dict[str, TypeTag] = {}
        self._by_class: dict[type, TypeTag] = {}

    def register_type(
        self, tag: str, cls: type, unstructure: Unstructure, structure: Structure
    ) -> None:
        """Store instances of ``cls`` (and its subclasses) as ``{"__type__": tag, ...}``.

        :param tag: the ``__type__`` value; choose a name unlikely to clash (e.g. prefixed with
            your plugin's name). Two classes claiming one tag is an error naming both.
        :param cls: the class to encode.
        :param unstructure: ``obj -> dict`` of its fields, without ``__type__``.
        :param structure: ``dict -> obj``; raise ``ValueError``/``TypeError`` on bad fields.
        """
        if not isinstance(tag, str) or not tag:
            msg = f"a __type__ tag must be a non-empty string, got {tag!r}"
            raise ValueError(msg)
        if tag in self._by_tag:
            taken = _qualname(self._by_tag[tag].cls)
            msg = f"__type__ tag {tag!r} is already registered for {taken}, not {_qualname(cls)}"
            raise ValueError(msg)
        if cls in self._by_class:
            msg = f"{_qualname(cls)} is already registered as __type__ {self._by_class[cls].tag!r}"
            raise ValueError(msg)
        entry = TypeTag(tag=tag, cls=cls, unstructure=unstructure, structure=structure)
        self._by_tag[tag] = entry
        self._by_class[cls] = entry

        def unstructure_hook(obj: Any) -> dict[str, Any]:
            fields = unstructure(obj)
            if _TYPE in fields:
                msg = f"the unstructure function for {tag!r} must not return {_TYPE!r}"
                raise ValueError(msg)
            return {_TYPE: tag, **fields}

        def structure_hook(value: Any, _: Any) -> Any:
            built = structure(value)
            clock = _decode_clock.get()
            if clock is not None and getattr(built, "nowfun", False) is None:
                # A schedule decoded for a tick reads the tick's clock: given while it is
                # built, so nothing decoded is changed afterwards.
                built.nowfun = clock
            return built

        self.register_unstructure_hook(cls, unstructure_hook)
        self.register_structure_hook(cls, structure_hook)

    def tag_for(self, cls: type) -> TypeTag | None:
        """The tag that encodes ``cls``: its own, else its nearest registered base class'."""
        for klass in cls.__mro__:
            found = self._by_class.get(klass)
            if found is not None:
                return found
        return None

    def tag_named(self, tag: str) -> TypeTag | None:
        """The registration for ``tag``, or ``None`` if no installed code knows it."""
        return self._by_tag.get(tag)

    @property
    def tags(self) -> tuple[str, ...]:
        """Every registered tag, in registration order."""
        return tuple(self._by_tag)

    def copy(self, *args: Any, **kwargs: Any) -> Self:
        """A copy with the same cattrs hooks and ``__type__`` tags."""
        res = super().copy(*args, **kwargs)
        res._by_tag.update(self._by_tag)
        res._by_class.update(self._by_class)
        return res


# ---------------------------------------------------------------------------- field helpers


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict) and isinstance(value.get(_TYPE), str):
        return f"unknown __type__ {value[_TYPE]!r}"
    return type(value).__name__


def _check_keys(fields: Mapping[str, Any], required: tuple[str, ...], allowed: set[str]) -> None:
    missing = [k for k in required if k not in fields]
    if missing:
        raise _DecodeFailure(f"missing {', '.join(map(repr, missing))}")
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise _DecodeFailure(f"unknown field(s) {', '.join(map(repr, unknown))}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------------------- datetime


def _unstructure_datetime(obj: datetime) -> dict[str, Any]:
    zone: str | float
    if obj.tzinfo is None:
        zone = "UTC"  # celery-redbeat's choice: naive datetimes are read back as UTC
    elif hasattr(obj.tzinfo, "key"):
        zone = obj.tzinfo.key  # zoneinfo.ZoneInfo
    else:
        offset = obj.utcoffset()
        if offset is None:
            msg = f"cannot store {obj!r}: its tzinfo gives no UTC offset"
            raise TypeError(msg)
        zone = offset.total_seconds()
    fields = {
        "year": obj.year,
        "month": obj.month,
        "day": obj.day,
        "hour": obj.hour,
        "minute": obj.minute,
        "second": obj.second,
        "microsecond": obj.microsecond,
        "timezone": zone,
    }
    if obj.fold:  # the second pass of a repeated hour (fall back): an hour later than fold 0
        fields["fold"] = 1
    return fields


_DATETIME_FIELDS = ("year", "month", "day", "hour", "minute", "second", "microsecond")
_DATETIME_KEYS = frozenset({*_DATETIME_FIELDS, "timezone"})


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    """``ZoneInfo(name)``, remembered: a busy tick decodes a datetime per entry."""
    return ZoneInfo(name)


def _structure_datetime(fields: dict[str, Any]) -> datetime:
    if fields.keys() != _DATETIME_KEYS:  # both projects write all of them: nothing to check
        _check_keys(fields, ("year", "month", "day"), {*_DATETIME_KEYS, "fold"})
    if fields.get("fold", 0) not in (0, 1):
        raise _DecodeFailure(f"fold must be 0 or 1, got {fields['fold']!r}")
    zone = fields.pop("timezone", "UTC")
    if _is_number(zone):  # a fixed offset in seconds
        tz: timezone | ZoneInfo = timezone(timedelta(minutes=zone / 60))
    elif isinstance(zone, str):
        tz = _zone(zone)
    else:
        msg = f"timezone must be a zone name or an offset in seconds, got {zone!r}"
        raise _DecodeFailure(msg)
    for key, value in fields.items():
        if type(value) is not int:  # bool, float and int subclasses are refused
            raise _DecodeFailure(f"{key} must be an integer, got {value!r}")
    return datetime(tzinfo=tz, **fields)


# ---------------------------------------------------------------------------- schedules


def _unstructure_interval(obj: Any) -> dict[str, Any]:  # celery.schedules.schedule
    return {"every": obj.run_every.total_seconds(), "relative": bool(obj.relative)}


def _structure_interval(fields: dict[str, Any]) -> schedule:
    _check_keys(fields, ("every",), {"every", "relative"})
    every, relative = fields["every"], fields.get("relative", False)
    if not _is_number(every):
        raise _DecodeFailure(f"every must be a number of seconds, got {every!r}")
    if not isinstance(relative, bool):
        raise _DecodeFailure(f"relative must be true or false, got {relative!r}")
    return schedule(run_every=every, relative=relative)


_CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


def _unstructure_crontab(obj: Any) -> dict[str, Any]:  # celery.schedules.crontab
    # The fields as the user gave them, in celery-redbeat's order.
    return {
        "minute": obj._orig_minute,
        "hour": obj._orig_hour,
        "day_of_week": obj._orig_day_of_week,
        "day_of_month": obj._orig_day_of_month,
        "month_of_year": obj._orig_month_of_year,
    }


def _structure_crontab(fields: dict[str, Any]) -> crontab:
    _check_keys(fields, (), set(_CRONTAB_FIELDS))
    return crontab(**fields)


def _unstructure_zoned_crontab(obj: zoned_crontab) -> dict[str, Any]:
    # Celery's fields, then the zone: a tz database name, or null for the app's timezone.
    return {**_unstructure_crontab(obj), "tz": obj.zone}


def _structure_zoned_crontab(fields: dict[str, Any]) -> zoned_crontab:
    _check_keys(fields, (), {*_CRONTAB_FIELDS, "tz"})
    zone = fields.pop("tz", None)
    if zone is not None and not isinstance(zone, str):
        raise _DecodeFailure(f"tz must be a time zone name or null, got {_type_name(zone)}")
    return zoned_crontab(**fields, tz=zone)


def to_timestamp(dt: datetime) -> int:
    """Whole seconds since the epoch (celery-redbeat's rrule format, and its scores)."""
    return calendar.timegm(dt.utctimetuple())


def utcoffset_minutes(dt: datetime) -> float | int:
    """The datetime's UTC offset in minutes; 0 when naive or UTC."""
    offset = dt.utcoffset()
    return offset.total_seconds() / 60 if offset else 0


def from_timestamp(seconds: float, tz_minutes: float = 0) -> datetime:
    """An aware datetime for Unix seconds, in a fixed UTC offset given in minutes."""
    tz = timezone(timedelta(minutes=tz_minutes)) if tz_minutes else UTC
    return datetime.fromtimestamp(seconds, tz=tz)


_RRULE_FIELDS = (
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


def _unstructure_rrule(obj: rrule) -> dict[str, Any]:
    # celery-redbeat's format: dtstart/until as whole UTC seconds (microseconds are dropped) and
    # their UTC offset in minutes (a zone name is dropped: it is read back as a fixed offset).
    fields = {name: getattr(obj, name) for name in _RRULE_FIELDS}
    for key, value in (("dtstart", obj.dtstart), ("until", obj.until)):
        if value:
            fields[key] = to_timestamp(value)
            fields[f"{key}_tz"] = utcoffset_minutes(value)
    return fields


def _structure_rrule(fields: dict[str, Any]) -> rrule:
    _check_keys(fields, ("freq",), {*_RRULE_FIELDS, "dtstart", "dtstart_tz", "until", "until_tz"})
    for key in ("dtstart", "until"):
        stamp, tz_minutes = fields.get(key), fields.pop(f"{key}_tz", 0)
        if stamp is None:
            continue
        if not _is_number(stamp) or not _is_number(tz_minutes):
            msg = f"{key} must be a Unix timestamp with {key}_tz in minutes, got {stamp!r}"
            raise _DecodeFailure(msg)
        fields[key] = from_timestamp(stamp, tz_minutes)
    return rrule(**fields)


def _unstructure_weekday(obj: weekday) -> dict[str, Any]:
    # celery-redbeat writes only the day. MO(+1) ("the first Monday") would come back as MO,
    # so RedBeat adds "n" when it is set; celery-redbeat's decoder reads that form too.
    if obj.n:
        return {"wkday": obj.weekday, "n": obj.n}
    return {"wkday": obj.weekday}


def _structure_weekday(fields: dict[str, Any]) -> weekday:
    _check_keys(fields, ("wkday",), {"wkday", "n"})
    day, n = fields["wkday"], fields.get("n")
    if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
        raise _DecodeFailure(f"wkday must be an integer from 0 (Monday) to 6, got {day!r}")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool)):
        raise _DecodeFailure(f"n must be an integer, got {n!r}")
    return weekday(day, n)


def _unstructure_solar(obj: solar) -> dict[str, Any]:
    return {"event": obj.event, "lat": obj.lat, "lon": obj.lon}


def _structure_solar(fields: dict[str, Any]) -> solar:
    from celery.exceptions import ImproperlyConfigured

    _check_keys(fields, ("event", "lat", "lon"), {"event", "lat", "lon"})
    try:
        return solar(fields["event"], fields["lat"], fields["lon"])
    except ImproperlyConfigured:
        msg = "solar schedules need the ephem library: pip install 'celery[solar]'"
        raise _DecodeFailure(msg) from None


def _unstructure_clocked(obj: clocked) -> dict[str, Any]:
    return {"clocked_time": obj.clocked_time}


def _structure_clocked(fields: dict[str, Any]) -> clocked:
    _check_keys(fields, ("clocked_time",), {"clocked_time"})
    when = fields["clocked_time"]
    if not isinstance(when, datetime):
        raise _DecodeFailure(f"clocked_time must be a datetime, got {_type_name(when)}")
    return clocked(when)


# ---------------------------------------------------------------------------- the models

_DEFINITION_KEYS = ("name", "task", "args", "kwargs", "options", "schedule", "enabled")


def _as_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return value if isinstance(value, dict) else dict(value)


def _unstructure_definition(d: EntryDefinition) -> dict[str, Any]:
    # celery-redbeat's key order (RedBeatSchedulerEntry.save); values are encoded by the codec.
    return {
        "name": d.name,
        "task": d.task,
        "args": d.args,
        "kwargs": _as_dict(d.kwargs),
        "options": _as_dict(d.options),
        "schedule": d.schedule,
        "enabled": d.enabled,
    }


def _structure_schedule(value: Any, data: Mapping[str, Any]) -> Any:
    if value is None:
        raise _DecodeFailure("missing schedule")
    if isinstance(value, dict) and isinstance(value.get(_TYPE), str):
        msg = f"unknown schedule type {value[_TYPE]!r}: install the plugin that provides it"
        raise _DecodeFailure(msg)
    if _is_number(value):
        # Celery's maybe_schedule: a number of seconds is an interval.
        relative = bool(data.get("relative", False))
        try:
            return schedule(run_every=value, relative=relative, nowfun=_decode_clock.get())
        except (ValueError, OverflowError) as exc:  # NaN, infinities, beyond a timedelta
            raise _DecodeFailure(f"invalid schedule {value!r}: {_reason(exc)}") from exc
    if not callable(getattr(value, "is_due", None)):
        raise _DecodeFailure(f"schedule must be a schedule object, got {_type_name(value)}")
    return value


def _structure_definition(data: Any, _: Any) -> EntryDefinition:
    # Keys celery-redbeat never writes are ignored: ScheduleEntry(**definition) would only have
    # accepted ScheduleEntry's own arguments there.
    if not isinstance(data, Mapping):
        raise _DecodeFailure(f"definition must be a JSON object, got {_type_name(data)}")
    name, task = data.get("name"), data.get("task")
    if not isinstance(name, str):
        raise _DecodeFailure(f"name must be a string, got {_type_name(name)}")
    if task is None:
        raise _DecodeFailure("missing task")
    if not isinstance(task, str):
        raise _DecodeFailure(f"task must be a string, got {_type_name(task)}")
    args = data.get("args", ())
    if args is not None and not isinstance(args, list | tuple):
        raise _DecodeFailure(f"args must be a list, got {_type_name(args)}")
    mappings: dict[str, dict[str, Any]] = {}
    for key in ("kwargs", "options"):
        value = data.get(key) or {}  # ScheduleEntry turns a missing or empty value into {}
        if not isinstance(value, dict):
            raise _DecodeFailure(f"{key} must be an object, got {_type_name(value)}")
        mappings[key] = value
    enabled = data.get("enabled", True)
    if enabled is None or (isinstance(enabled, int) and not isinstance(enabled, bool)):
        enabled = bool(enabled)  # what celery-redbeat's `if not self.enabled` makes of it
    if not isinstance(enabled, bool):
        raise _DecodeFailure(f"enabled must be true or false, got {_type_name(enabled)}")
    return EntryDefinition(
        name=name,
        task=task,
        schedule=_structure_schedule(data.get("schedule"), data),
        args=args,
        kwargs=mappings["kwargs"],
        options=mappings["options"],
        enabled=enabled,
    )


def _unstructure_meta(m: EntryMeta) -> dict[str, Any]:
    return {"last_run_at": m.last_run_at, "total_run_count": m.total_run_count}


def _structure_meta(data: Any, _: Any) -> EntryMeta:
    if not isinstance(data, Mapping):
        raise _DecodeFailure(f"meta must be a JSON object, got {_type_name(data)}")
    last_run_at = data.get("last_run_at")
    if last_run_at is not None and not isinstance(last_run_at, datetime):
        raise _DecodeFailure(f"last_run_at must be a datetime, got {_type_name(last_run_at)}")
    count = data.get("total_run_count") or 0  # celery-redbeat's save() writes no count
    if not isinstance(count, int) or isinstance(count, bool):
        raise _DecodeFailure(f"total_run_count must be an integer, got {_type_name(count)}")
    return EntryMeta(last_run_at=last_run_at, total_run_count=count)


_POLICY_FIELDS = {a.name for a in attrs.fields(EntryPolicy)} - {"extra"}


def _unstructure_policy(p: EntryPolicy) -> dict[str, Any]:
    # Only settings that differ from the default are written, so an unset policy is "{}".
    out: dict[str, Any] = {}
    for field in _POLICY_ORDER:
        value = getattr(p, field)
        if value is not None:
            out[field] = list(value) if isinstance(value, tuple) else value
    out.update(p.extra)
    return out


#: The policy's fields in the order they are written, and what each must be when read.
_POLICY_ORDER: Final = ("paused_reason", "paused_by", "paused_at", *POLICY_FIELDS)


def _structure_policy(data: Any, _: Any) -> EntryPolicy:
    if not isinstance(data, Mapping):
        raise _DecodeFailure(f"policy must be a JSON object, got {_type_name(data)}")
    for field in ("paused_reason", "paused_by"):
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise _DecodeFailure(f"{field} must be a string, got {_type_name(value)}")
    paused_at = data.get("paused_at")
    if paused_at is not None and (
        isinstance(paused_at, bool)
        or not isinstance(paused_at, int | float)
        or not math.isfinite(paused_at)
    ):
        raise _DecodeFailure(f"paused_at must be Unix seconds, got {_type_name(paused_at)}")
    for field in POLICY_FIELDS:
        accepted = policy_problem(field, data.get(field))
        if accepted is not None:
            raise _DecodeFailure(f"{field} must be {accepted}, got {data.get(field)!r}")
    extra = {k: v for k, v in data.items() if k not in _POLICY_FIELDS}
    number = _float_or_none
    return EntryPolicy(
        paused_reason=data.get("paused_reason"),
        paused_by=data.get("paused_by"),
        paused_at=number(paused_at),
        misfire=data.get("misfire"),
        starting_deadline=number(data.get("starting_deadline")),
        jitter=number(data.get("jitter")),
        start_at=number(data.get("start_at")),
        end_at=number(data.get("end_at")),
        max_runs=data.get("max_runs"),
        overlap=data.get("overlap"),
        blackouts=data.get("blackouts"),
        blackout_action=data.get("blackout_action"),
        extra=extra,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------------- the converter


def configure_converter(converter: RedBeatConverter) -> None:
    """Register RedBeat's ``__type__`` tags and the entry models' hooks on ``converter``."""
    converter.register_type("datetime", datetime, _unstructure_datetime, _structure_datetime)
    converter.register_type("interval", schedule, _unstructure_interval, _structure_interval)
    converter.register_type("crontab", crontab, _unstructure_crontab, _structure_crontab)
    converter.register_type("rrule", rrule, _unstructure_rrule, _structure_rrule)
    converter.register_type("weekday", weekday, _unstructure_weekday, _structure_weekday)
    converter.register_type("solar", solar, _unstructure_solar, _structure_solar)
    converter.register_type("clocked", clocked, _unstructure_clocked, _structure_clocked)
    converter.register_type(
        "redbeat.crontab", zoned_crontab, _unstructure_zoned_crontab, _structure_zoned_crontab
    )
    converter.register_unstructure_hook(EntryDefinition, _unstructure_definition)
    converter.register_structure_hook(EntryDefinition, _structure_definition)
    converter.register_unstructure_hook(EntryMeta, _unstructure_meta)
    converter.register_structure_hook(EntryMeta, _structure_meta)
    converter.register_unstructure_hook(EntryPolicy, _unstructure_policy)
    converter.register_structure_hook(EntryPolicy, _structure_policy)


def make_converter() -> RedBeatConverter:
    """A new private converter with RedBeat's hooks. Never use cattrs' global converter."""
    converter = RedBeatConverter()
    configure_converter(converter)
    return converter


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@attrs.define
class Codec:
    """Encodes and decodes one scheduler's stored entries. Holds its private converter."""

    converter: RedBeatConverter = attrs.field(factory=make_converter)
    # Built once: json.dumps/json.loads with default=/object_hook= build a new encoder or
    # decoder on every call, which was a fifth of decoding an entry in a busy tick. Both are
    # safe to share between threads.
    _encoder: json.JSONEncoder = attrs.field(init=False, repr=False, eq=False)
    _decoder: json.JSONDecoder = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._encoder = json.JSONEncoder(default=self.encode_tagged)
        self._decoder = json.JSONDecoder(object_hook=self.decode_tagged)

    def register_type(
        self, tag: str, cls: type, unstructure: Unstructure, structure: Structure
    ) -> None:
        """Add a ``__type__`` tag; see :meth:`RedBeatConverter.register_type`."""
        self.converter.register_type(tag, cls, unstructure, structure)

    # ------------------------------------------------------------------ any JSON value

    def dumps(self, obj: Any) -> str:
        """``obj`` as JSON, exactly as ``json.dumps(obj, cls=RedBeatJSONEncoder)`` writes it.

        Raises ``TypeError`` for an object with no registered ``__type__`` tag.
        """
        return self._encoder.encode(obj)

    def loads(self, raw: str | bytes) -> Any:
        """Parse JSON and rebuild tagged objects, like celery-redbeat's ``RedBeatJSONDecoder``.

        An object with an unknown ``__type__`` is returned as a dict that keeps it. Raises
        ``ValueError`` (with a short reason) when the JSON or a tagged object is invalid.
        """
        if isinstance(raw, bytes | bytearray):  # as json.loads reads bytes
            raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return self._decoder.decode(raw)

    def encode_tagged(self, obj: Any) -> Any:
        """One non-JSON object as its ``__type__`` dict (``json.dumps``'s ``default``)."""
        if self.converter.tag_for(type(obj)) is None:
            known = ", ".join(self.converter.tags)
            msg = (
                f"cannot store an object of type {_qualname(type(obj))} as JSON: no __type__ tag "
                f"is registered for it (known: {known}). If it is a schedule, a plugin can "
                "register it via the redbeat_configure_converter hook "
                "(codec.register_type(tag, cls, unstructure, structure))."
            )
            raise UnencodableError(msg, obj)
        return self.converter.unstructure(obj)

    def decode_tagged(self, fields: dict[str, Any]) -> Any:
        """One parsed JSON object back into what its ``__type__`` names (an ``object_hook``)."""
        if _TYPE not in fields:
            return fields
        tag = fields.pop(_TYPE)
        entry = self.converter.tag_named(tag) if isinstance(tag, str) else None
        if entry is None:
            # celery-redbeat pops the tag and puts it back, so it moves to the end.
            fields[_TYPE] = tag
            return fields
        try:
            return self.converter.structure(fields, entry.cls)
        except Exception as exc:  # a bad stored value: any error means "cannot decode"
            raise _DecodeFailure(f"invalid {tag!r} value: {_reason(exc)}") from exc

    def _load(self, raw: str | bytes, what: str) -> Any:
        try:
            return self.loads(raw)
        except _DecodeFailure:
            raise
        except (ValueError, RecursionError) as exc:
            raise _DecodeFailure(f"{what} is not valid JSON: {_reason(exc)}") from exc

    def _decode(self, raw: str | bytes, cls: type[_T], what: str, name: str) -> _T:
        try:
            return self.converter.structure(self._load(raw, what), cls)
        except _DecodeFailure as exc:
            raise EntryDecodeError(name, str(exc)) from exc

    # ------------------------------------------------------------------ the hash fields

    def encode_definition(self, definition: EntryDefinition) -> str:
        """The ``definition`` field: ``{name, task, args, kwargs, options, schedule, enabled}``."""
        return self.dumps(self.converter.unstructure(definition))

    def decode_definition(
        self, raw: str | bytes | None, *, name: str, clock: Clock | None = None
    ) -> EntryDefinition:
        """Read a ``definition`` field. ``name`` (the entry's) is used if none is stored.

        ``clock``, when given, is the clock the decoded schedule reads (its ``nowfun``), unless
        the stored schedule has one of its own: a tick judges every entry at one instant.

        Raises :class:`EntryDecodeError` for anything that cannot be read back exactly.
        """
        if not raw:
            raise EntryDecodeError(name, "no definition stored")
        token = _decode_clock.set(clock)
        try:
            data = self._load(raw, "definition")
            if isinstance(data, dict):
                data.setdefault("name", name)
            return self.converter.structure(data, EntryDefinition)
        except _DecodeFailure as exc:
            raise EntryDecodeError(name, str(exc)) from exc
        finally:
            _decode_clock.reset(token)

    def encode_meta(self, meta: EntryMeta) -> str:
        """The ``meta`` field: ``{"last_run_at": ..., "total_run_count": ...}``."""
        return self.dumps(self.converter.unstructure(meta))

    def decode_meta(self, raw: str | bytes | None, *, name: str = "?") -> EntryMeta:
        """Read a ``meta`` field; missing or empty means never run (``EntryMeta()``)."""
        if not raw:
            return EntryMeta()
        return self._decode(raw, EntryMeta, "meta", name)

    def encode_policy(self, policy: EntryPolicy) -> str:
        """The ``policy`` field: settings that differ from the defaults, plus unknown ones kept."""
        return self.dumps(self.converter.unstructure(policy))

    def decode_policy(self, raw: str | bytes | None, *, name: str = "?") -> EntryPolicy:
        """Read a ``policy`` field; missing or empty means the defaults. Unknown keys are kept."""
        if not raw:
            return EntryPolicy()
        return self._decode(raw, EntryPolicy, "policy", name)
