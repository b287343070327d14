"""How many examples the fuzz suite (tests/fuzz) draws.

The default run draws a modest, fixed set of examples (``derandomize``: the same examples
every run, so CI never meets a new one by chance). ``REDBEAT_FUZZ_EXAMPLES=<n>`` (what
``nox -s chaos`` sets) draws ``n`` random examples per test instead, for a long search; a
failure prints the example and the ``@reproduce_failure`` line that replays it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

EXAMPLES_ENV = "REDBEAT_FUZZ_EXAMPLES"
F = TypeVar("F", bound=Callable[..., Any])


def fuzz_settings(default_examples: int) -> Callable[[F], F]:
    """``@settings`` for a fuzz test: ``default_examples`` fixed examples, or as many random
    ones as ``REDBEAT_FUZZ_EXAMPLES`` says."""
    wanted = int(os.environ.get(EXAMPLES_ENV, "0"))
    applied: Callable[[F], F] = settings(
        max_examples=wanted or default_examples,
        derandomize=not wanted,
        deadline=None,  # real server round trips, and decode budgets of up to a second
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,  # the fixtures used are per session
        ],
    )
    return applied


def fuzz_timeout(seconds_per_example: float) -> float:
    """The pytest timeout for a fuzz test: the suite's 300 s, or more for a long search."""
    return max(300.0, int(os.environ.get(EXAMPLES_ENV, "0")) * seconds_per_example)
