"""celery-redbeat's ``redbeat.decoder`` API: JSON encoder/decoder classes and time helpers.

The classes delegate to RedBeat's codec, so ``json.dumps(obj, cls=RedBeatJSONEncoder)`` writes
exactly what the scheduler stores.
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from redbeat_core.codec import Codec

_codec = Codec()


def to_timestamp(dt: datetime) -> int:
    """Seconds since the epoch (whole seconds, as celery-redbeat's scores were)."""
    return calendar.timegm(dt.utctimetuple())


def get_utcoffset_minutes(dt: datetime) -> float:
    """The datetime's UTC offset in minutes (0 when naive)."""
    offset = dt.utcoffset()
    return offset.total_seconds() / 60 if offset else 0


def from_timestamp(seconds: float, tz_minutes: float = 0) -> datetime:
    """An aware datetime for a Unix timestamp, in the given fixed offset (default UTC)."""
    tz = timezone(timedelta(minutes=tz_minutes)) if tz_minutes else UTC
    return datetime.fromtimestamp(seconds, tz=tz)


class RedBeatJSONDecoder(json.JSONDecoder):
    """Decodes ``__type__`` objects (datetime, interval, crontab, rrule, weekday, ...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["object_hook"] = self.dict_to_object
        super().__init__(*args, **kwargs)

    def dict_to_object(self, d: dict[str, Any]) -> Any:
        return _codec.decode_tagged(d)


class RedBeatJSONEncoder(json.JSONEncoder):
    """Encodes datetimes and schedules as ``__type__`` objects."""

    def default(self, o: Any) -> Any:
        try:
            return _codec.encode_tagged(o)
        except TypeError:
            return super().default(o)
