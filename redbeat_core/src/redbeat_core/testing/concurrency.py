"""Running contract cases at the same moment: threads released together, forked children.

Every wait here has a deadline and every child process is waited for (and killed by its pid
when it outlives the deadline): a contract case that hangs must fail, never freeze the suite.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence

import pytest

__all__ = ["fork_and_wait", "run_together"]

#: Seconds a contract case may take for its threads or its child; far above what any store
#: needs, so that only a hang (a deadlock, a lost wake-up) reaches it.
DEADLINE = 60.0


def run_together(work: Sequence[Callable[[], None]], *, timeout: float = DEADLINE) -> None:
    """Run each callable in a thread of its own, all released at the same moment by a barrier,
    and wait for every one. The first error raised in a thread is raised here; a thread still
    running at the deadline fails the test."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout)
            job()
        except BaseException as exc:  # reported in the test's own thread, below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in work]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in threads)
    if stuck:
        pytest.fail(f"{stuck} of {len(threads)} threads still running after {timeout:g}s")
    if errors:
        raise errors[0]


def fork_and_wait(child: Callable[[], int], *, timeout: float = DEADLINE) -> int:
    """Fork; in the child run ``child`` and exit with the status it returns (1 and a traceback
    on stderr if it raises), never returning into the caller (no pytest teardown runs twice).
    In the parent, wait for the child with a deadline and return its exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        status = 1
        try:
            status = child()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    deadline = time.monotonic() + timeout
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(wait_status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child (pid {pid}) did not exit within {timeout:g}s")
        time.sleep(0.01)
