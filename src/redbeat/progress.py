"""A progress bar for long writes (``redbeat import`` of a big file), on a terminal only.

An import of a hundred thousand entries takes a while; an operator watching a terminal wants to
see it move. Scripts and pipes must get the same plain lines as ever, so the bar is drawn only
when stderr is a terminal (never into stdout, which a script may read) and only for writes
large enough to take more than one round trip: a small import shows nothing extra.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Progress", "progress_bar"]

#: ``progress(done, total)``, as ``Schedule.import_`` calls it.
Progress = Callable[[int, int], None]


@contextmanager
def progress_bar(description: str, total: int, *, more_than: int) -> Iterator[Progress | None]:
    """A rich bar on stderr for ``total`` items, when stderr is a terminal and ``total`` is
    more than ``more_than``; else None (the caller passes no callback). The bar goes away when
    the write ends, leaving the command's own summary line."""
    if total <= more_than or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of)

        yield advance
