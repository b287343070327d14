"""Storage-independent lock strategies."""

from __future__ import annotations

import attrs

from redbeat_core.typing import Fence


@attrs.define
class NullLock:
    """No exclusion: for a single beat (``redbeat_lock_key = None``). Always held, no fence, so
    the store skips the leadership check."""

    _held: bool = False

    @property
    def fence(self) -> Fence | None:
        return None

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> bool:
        self._held = True
        return True

    def release(self) -> None:
        self._held = False

    def forget(self) -> None:
        self._held = False
