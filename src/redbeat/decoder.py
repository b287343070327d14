"""celery-redbeat's ``redbeat.decoder`` API: JSON encoder/decoder classes and time helpers.

The classes delegate to RedBeat's codec, so ``json.dumps(obj, cls=RedBeatJSONEncoder)`` writes
exactly what the scheduler stores.
"""

from __future__ import annotations

import json
from typing import Any

from redbeat_core.codec import Codec, from_timestamp, to_timestamp
from redbeat_core.codec import utcoffset_minutes as get_utcoffset_minutes

__all__ = [
    "RedBeatJSONDecoder",
    "RedBeatJSONEncoder",
    "from_timestamp",
    "get_utcoffset_minutes",
    "to_timestamp",
]

_codec = Codec()


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
