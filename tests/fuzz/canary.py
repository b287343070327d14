"""Callables that must never run: the fuzz suite names them in ``__type__`` tags.

A decoder that resolved a tag by importing it (as pickle and many "JSON with types" formats
do) would call one of these, or ``os.system`` / ``subprocess.run`` with :data:`MARKER` as the
file to create. The tests check :data:`CALLS` stays empty and :data:`MARKER` never appears.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

#: Every call of a canary: (name, args, kwargs).
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
#: A file that a shell command in a hostile tag would create (``touch``).
MARKER = Path(tempfile.gettempdir()) / f"redbeat-fuzz-canary-{os.getpid()}"


def fire(*args: Any, **kwargs: Any) -> None:
    """A function a decoder must not call."""
    CALLS.append(("fire", args, kwargs))


class Boom:
    """A class a decoder must not instantiate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        CALLS.append(("Boom", args, kwargs))


#: ``__type__`` tags naming importable callables, as a decoder that imports tags would read
#: them (module path, then attribute), each with fields that would make the call visible.
EXECUTABLE_TAGS: list[tuple[str, dict[str, Any]]] = [
    ("fuzz.canary.fire", {"x": 1}),
    ("fuzz.canary.Boom", {"x": 1}),
    ("tests.fuzz.canary.fire", {}),
    ("os.system", {"command": f"touch {MARKER}"}),
    ("posix.system", {"command": f"touch {MARKER}"}),
    ("subprocess.run", {"args": ["touch", str(MARKER)]}),
    ("subprocess.getoutput", {"cmd": f"touch {MARKER}"}),
    ("builtins.eval", {"source": f"open({str(MARKER)!r}, 'w')"}),
    ("builtins.exec", {"source": f"open({str(MARKER)!r}, 'w')"}),
    ("pickle.loads", {"data": "gASVAAAAAAAAAAB9lC4="}),
    ("importlib.import_module", {"name": "fuzz.canary"}),
    ("__import__", {"name": "os"}),
    ("celery.schedules.schedule", {"run_every": 0}),
]


def fired() -> bool:
    """Whether anything a hostile tag names ran."""
    return bool(CALLS) or MARKER.exists()
