"""A time budget for planning: no entry may cost a tick more than a bounded time.

A schedule is arbitrary computation: a stored recurrence rule that never matches, a plugin's
schedule type with a bug. One such entry used to hold the tick until the leader's lease lapsed;
the standby then took over and stuck on the same entry, and nothing was dispatched by anyone.

:class:`PlanningBudget` bounds both ends: one entry may take ``per_entry`` seconds (then
:class:`BudgetExceeded` interrupts it and the entry is quarantined), and the planning of a tick
stops once it has taken ``total`` seconds (the entries left are planned by the next tick, whose
claim renews the lease first). Interrupting running Python code is done the way pytest-timeout
does it, with a signal: a timer armed once per planning fires every quarter of ``per_entry``
and interrupts the entry being planned when it has run too long. The timer counts the
process's CPU time (``ITIMER_VIRTUAL``, ``SIGVTALRM``): a schedule that needs too much work is
busy computing, and ``SIGALRM`` stays free for whoever uses it (pytest-timeout does). That is
only possible in the main thread and when nothing else uses ``SIGVTALRM``; elsewhere only
``total`` is enforced, between entries.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import attrs

__all__ = ["BudgetExceeded", "PlanningBudget"]

_SIGNAL = signal.SIGVTALRM
_TIMER = signal.ITIMER_VIRTUAL


class BudgetExceeded(BaseException):
    """An entry's planning ran past its budget. A ``BaseException``, so that the schedule code it
    interrupts cannot swallow it in an ``except Exception``."""


@attrs.define
class PlanningBudget:
    """Time limits for planning one tick (see the module's docstring).

    :param per_entry: seconds one entry may take (decode, ``is_due``, next run); 0: no limit.
    :param total: seconds a tick's planning may take before it stops and leaves the rest to the
        next tick; 0: no limit.
    :param clock: the monotonic clock (tests give their own).
    """

    per_entry: float
    total: float = 0.0
    clock: Callable[[], float] = time.monotonic
    _started: float = attrs.field(init=False, default=0.0)
    _entry_since: float | None = attrs.field(init=False, default=None)
    _armed: bool = attrs.field(init=False, default=False)

    @contextlib.contextmanager
    def planning(self) -> Iterator[PlanningBudget]:
        """The budget for one planning: arms the interrupting timer when it can."""
        self._started = self.clock()
        previous = self._arm()
        try:
            yield self
        finally:
            self._disarm(previous)

    def exhausted(self) -> bool:
        """Whether the planning has used its ``total`` (checked between entries)."""
        return self.total > 0 and self.clock() - self._started > self.total

    def start_entry(self) -> None:
        """An entry's planning begins: from now on it may be interrupted."""
        self._entry_since = self.clock()

    def end_entry(self) -> None:
        """The entry's planning is over (call it inside the ``try`` that handles
        :class:`BudgetExceeded`, as its last statement)."""
        self._entry_since = None

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` when the current entry has run too long (what the
        timer does; callable directly where no timer can be armed)."""
        since = self._entry_since
        now = self.clock()
        if since is not None and self.per_entry > 0 and now - since > self.per_entry:
            # Not again in the handler, which ends the entry at once; but again one budget
            # later if nobody handled this one: raised inside a finalizer (a ``__del__`` the
            # garbage collector ran meanwhile), Python prints and drops it.
            self._entry_since = now
            raise BudgetExceeded(f"took more than {self.per_entry:g}s")

    # ------------------------------------------------------------------ the timer

    def _arm(self) -> Any:
        if self.per_entry <= 0 or threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(_SIGNAL) not in (signal.SIG_DFL, None):
            return None  # someone else's timer: leave it alone
        if signal.getitimer(_TIMER)[0] > 0:
            return None
        previous = signal.signal(_SIGNAL, self._on_alarm)
        tick = max(self.per_entry / 4, 0.01)
        signal.setitimer(_TIMER, tick, tick)
        self._armed = True
        return previous

    def _disarm(self, previous: Any) -> None:
        if not self._armed:
            return
        signal.setitimer(_TIMER, 0)
        signal.signal(_SIGNAL, previous if previous is not None else signal.SIG_DFL)
        self._armed = False

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        self.check()
