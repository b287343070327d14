"""The Lua scripts, read from the package once and registered per client.

redis-py's ``Script`` sends EVALSHA and, on NOSCRIPT (a restarted or failed-over server that
lost its script cache), loads the script and retries, so callers never see that error.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any, Final

SCRIPT_NAMES: Final = (
    "claim",
    "commit",
    "write",
    "load",
    "acquire_lock",
    "release_lock",
    "runs",
)


@functools.cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    return (files("redbeat_redis") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def register(client: Any, name: str) -> Any:
    """A callable ``Script`` bound to ``client``."""
    return client.register_script(source(name))
