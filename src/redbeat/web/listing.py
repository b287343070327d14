"""The dashboard's entry list, paged on the server so that no request reads the whole schedule.

What one page costs, with 100,000 entries on a loopback Valkey (measured, see
docs/dashboard.md):

* **All entries by name** (the default): the sorted names come from :class:`NameIndex`, read
  once with :meth:`Schedule.names` (a walk of the key space, ~0.4 s for 100,000 names) and
  then kept for :data:`NAMES_TTL` seconds; a page reads only its own rows. The page's live
  refresh re-reads those rows alone, never the names.
* **Scheduled entries by next run**: the schedule's own order
  (:meth:`Schedule.scheduled_names`), one read of the page whatever the schedule's size.
* **Quarantined entries**: the quarantine's names (a small record), then the page's rows.
* **A task filter, or the states paused, disabled and finished**: the store keeps no index
  of these, so entries are read in name order until the page is full or
  :data:`SCAN_BUDGET` entries were read; the page then says how far it got, and the next
  page goes on from there (``cursor``). A request never reads more than the budget.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import attrs

from redbeat_core.catalog import PAGE, EntryInfo, EntryState, Schedule

__all__ = ["NAMES_TTL", "SCAN_BUDGET", "EntryPage", "NameIndex", "Query", "page_of"]

#: How long the sorted names are reused before they are read again (seconds). The dashboard's
#: own changes (a delete) refresh them at once; an entry another process adds shows up within
#: this time.
NAMES_TTL: Final = 30.0
#: The most entries one request reads to fill a filtered page.
SCAN_BUDGET: Final = 5 * PAGE
#: Page sizes a request may ask for.
MAX_LIMIT: Final = 500
SORTS: Final = ("name", "next")


@attrs.frozen
class Query:
    """What a list page asks for (the query string of ``/`` and ``/api/entries``)."""

    match: str = "*"
    task: str | None = None
    state: EntryState | None = None
    sort: str = "name"
    offset: int = 0
    limit: int = 50
    #: Where a filtered scan goes on from (an index into the sorted names).
    cursor: int = 0

    @classmethod
    def from_params(cls, params: Any) -> Query:
        """Read a query string; a bad value raises ``ValueError`` naming the parameter and
        what it accepts."""

        def number(key: str, default: int, low: int, high: int) -> int:
            raw = params.get(key) or ""
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{key}={raw!r}: a whole number") from None
            if not low <= value <= high:
                raise ValueError(f"{key}={value}: from {low} to {high}")
            return value

        state_text = params.get("state") or None
        try:
            state = EntryState(state_text) if state_text else None
        except ValueError:
            accepted = ", ".join(s.value for s in EntryState)
            raise ValueError(f"state={state_text!r}: one of {accepted}") from None
        sort = params.get("sort") or "name"
        if sort not in SORTS:
            raise ValueError(f"sort={sort!r}: one of {', '.join(SORTS)}")
        return cls(
            match=params.get("match") or "*",
            task=params.get("task") or None,
            state=state,
            sort=sort,
            offset=number("offset", 0, 0, 10**9),
            limit=number("limit", 50, 1, MAX_LIMIT),
            cursor=number("cursor", 0, 0, 10**9),
        )

    @property
    def match_glob(self) -> str:
        """The name filter as a glob: a plain word matches names containing it."""
        return _as_glob(self.match)

    @property
    def task_glob(self) -> str | None:
        return None if self.task is None else _as_glob(self.task)

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string of this query with ``changes`` (defaults left out)."""
        values = attrs.evolve(self, **changes)
        found: dict[str, str] = {}
        for field in attrs.fields(Query):
            value = getattr(values, field.name)
            if value != field.default and value is not None:
                found[field.name] = value.value if isinstance(value, EntryState) else str(value)
        return found


@attrs.frozen
class EntryPage:
    """One page of the list."""

    entries: list[EntryInfo]
    #: How many entries match, when known without reading them all (None: a filtered scan).
    total: int | None
    #: For a filtered scan: the cursor of the next page (None: nothing after this one).
    next_cursor: int | None = None
    #: For a filtered scan: how many names it has gone through, of how many.
    scanned: int | None = None
    names_total: int | None = None


@attrs.define
class NameIndex:
    """The sorted names of every entry, read at most once per ``ttl`` seconds (thread-safe:
    the dashboard serves requests from a thread pool)."""

    schedule: Schedule
    ttl: float = NAMES_TTL
    clock: Callable[[], float] = time.monotonic
    _names: list[str] | None = attrs.field(default=None, init=False)
    _read_at: float = attrs.field(default=0.0, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def names(self) -> list[str]:
        with self._lock:
            now = self.clock()
            if self._names is None or now - self._read_at >= self.ttl:
                self._names = self.schedule.names()
                self._read_at = now
            return self._names

    def forget(self) -> None:
        """Read the names again next time (after the dashboard deleted an entry)."""
        with self._lock:
            self._names = None


def page_of(schedule: Schedule, index: NameIndex, query: Query) -> EntryPage:
    """The page ``query`` asks for (see the module's docstring for what each one reads)."""
    match = query.match_glob
    if query.sort == "next" or (query.state is EntryState.SCHEDULED and query.task is None):
        if query.sort == "next" and query.state not in (None, EntryState.SCHEDULED):
            return EntryPage([], 0)  # only scheduled entries have a next run
        if match == "*" and query.task is None:
            names, total = schedule.scheduled_names(query.offset, query.limit)
            return EntryPage(schedule.infos(names), total)
        if query.sort == "next":  # a filtered list in due order: scan the due order

            def due(start: int, size: int) -> list[str]:
                return schedule.scheduled_names(start, size)[0]

            total = schedule.scheduled_names(0, 0)[1]
            return _scan(schedule, due, total, query, EntryState.SCHEDULED)
    if query.state is EntryState.QUARANTINED and query.task is None:
        names = sorted(n for n in schedule.quarantine() if fnmatch.fnmatchcase(n, match))
        return _slice(schedule, names, query)
    names = index.names()
    if match != "*":
        names = [name for name in names if fnmatch.fnmatchcase(name, match)]
    if query.task is None and query.state is None:
        return _slice(schedule, names, query)
    return _scan(schedule, _slicer(names), len(names), query, query.state)


def _slice(schedule: Schedule, names: list[str], query: Query) -> EntryPage:
    chosen = names[query.offset : query.offset + query.limit]
    return EntryPage(schedule.infos(chosen), len(names))


def _slicer(names: list[str]) -> Callable[[int, int], list[str]]:
    return lambda start, size: names[start : start + size]


def _scan(
    schedule: Schedule,
    chunk: Callable[[int, int], list[str]],
    total: int,
    query: Query,
    state: EntryState | None,
) -> EntryPage:
    """Read entries from ``query.cursor`` on (``chunk(start, size)``: the names at those
    positions), keeping those that match the query, until the page is full or
    :data:`SCAN_BUDGET` positions were read. The next page starts after the last entry kept."""
    task, match = query.task_glob, query.match_glob
    found: list[EntryInfo] = []
    position = query.cursor
    end = min(total, position + SCAN_BUDGET)
    while position < end and len(found) < query.limit:
        size = min(PAGE, end - position)
        names = chunk(position, size)
        wanted = [name for name in names if fnmatch.fnmatchcase(name, match)]
        infos = {info.name: info for info in schedule.infos(wanted)}
        for step, name in enumerate(names, start=1):
            info = infos.get(name)
            if info is None or (state is not None and info.state is not state):
                continue
            if task is not None and not fnmatch.fnmatchcase(info.task or "", task):
                continue
            found.append(info)
            if len(found) >= query.limit:
                size = step  # the next page starts after it
                break
        position += size
    return EntryPage(
        found,
        None,
        next_cursor=position if position < total else None,
        scanned=position,
        names_total=total,
    )


def _as_glob(text: str) -> str:
    """``text`` as a glob: as given when it holds a wildcard, else ``*text*``."""
    return text if any(c in text for c in "*?[") else f"*{text}*"
