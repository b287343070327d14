"""The Celery app of the real ``celery beat`` processes of B6 with django-celery-beat.

The runner copies this file into a temporary folder as ``bench_dj_beat_app.py`` and starts
``python -m celery -A bench_dj_beat_app beat -S django_celery_beat.schedulers:DatabaseScheduler``
there with the django venv's interpreter. Parameters come as JSON in ``BENCH_BEAT`` (the same
as ``benchmarks/beat_app.py``'s, plus ``db`` and ``root``, the repository). Each publish is
one line ``<time.time()> <entry index>`` in ``publish-<pid>.log``, as that app writes it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

PARAMS = json.loads(os.environ["BENCH_BEAT"])
sys.path.insert(0, PARAMS["root"])

from benchmarks.django_peer import djsettings  # noqa: E402

djsettings.configure(PARAMS["db"])

from celery import Celery  # noqa: E402
from celery.schedules import schedule  # noqa: E402
from celery.signals import after_task_publish, before_task_publish  # noqa: E402

app = Celery("bench_dj_beat")
app.conf.update(
    broker_url="memory://",
    result_expires=None,
    beat_schedule={
        f"p{i:03d}": {
            "task": "bench.noop",
            "schedule": schedule(run_every=PARAMS["every"], relative=PARAMS["relative"]),
            "args": (i,),
        }
        for i in range(PARAMS["n"])
    },
)


@app.task(name="bench.noop")
def noop(*args: Any, **kwargs: Any) -> None:
    return None


_LOG = open(  # noqa: SIM115 - open for the life of the process
    os.path.join(PARAMS["log_dir"], f"publish-{os.getpid()}.log"), "a", buffering=1
)


@before_task_publish.connect(weak=False)
def _record(sender: Any = None, body: Any = None, **_: Any) -> None:
    index = body[0][0] if body and body[0] else -1
    _LOG.write(f"{time.time():.6f} {index}\n")


@after_task_publish.connect(weak=False)
def _drop(**_: Any) -> None:
    """The ``memory://`` broker keeps messages in this process; a real one takes them away."""
    from kombu.transport.memory import Channel

    for queue in list(Channel.queues.values()):
        with queue.mutex:
            queue.queue.clear()
