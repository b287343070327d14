"""The Celery configuration RedBeat reads its settings from, defaults added early included.

Settings a user adds with ``app.conf.add_defaults({...})`` before the app is finalized sit in
the configuration's ``defaults`` until Celery finalizes it, which replaces them: the first
lookup of a missing key, or iterating the configuration, finalizes it. celery-redbeat reads
what it happens to look up before that moment; RedBeat keeps a copy of those early defaults
when it first looks at an app that is not finalized yet and reads them under everything else,
so they count whatever RedBeat (or Celery) reads first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class CeleryConf:
    """A read-only view of ``app.conf`` plus the early ``add_defaults`` Celery would drop.

    Offers what :class:`~redbeat_core.settings.SettingRegistry` reads: ``get`` and iteration.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        conf = app.conf
        early = () if getattr(app, "configured", True) else getattr(conf, "defaults", ())
        self._early: tuple[Mapping[str, Any], ...] = tuple(
            dict(d) for d in early if isinstance(d, Mapping)
        )

    def get(self, key: str, default: Any = None) -> Any:
        value = self._app.conf.get(key)
        if value is not None:
            return value
        for defaults in self._early:
            if defaults.get(key) is not None:
                return defaults[key]
        return default

    def __iter__(self) -> Iterator[str]:
        seen = {str(key) for key in self._app.conf}
        yield from seen
        for defaults in self._early:
            yield from (str(key) for key in defaults if str(key) not in seen)

    def __contains__(self, key: object) -> bool:
        return key in self._app.conf or any(key in d for d in self._early)
