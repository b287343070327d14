"""The Celery app of the real ``celery beat`` processes in the precision and failover cases.

The runner copies this file into a temporary folder as ``bench_beat_app.py`` and starts
``python -m celery -A bench_beat_app beat -S redbeat.RedBeatScheduler`` there, with either
side's interpreter. Parameters come as JSON in the environment variable ``BENCH_BEAT``.

Every publish is recorded by Celery's ``before_task_publish`` signal, in the beat process,
as one line ``<time.time()> <entry index>`` in ``publish-<pid>.log`` (line-buffered, so a
SIGKILL loses nothing already published). The broker is ``memory://`` unless ``broker`` names a
real one (the real-broker mode), where the runner times each message's arrival itself: with
batched publishes, ``before_task_publish`` fires when a message is buffered, not when it is sent.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import Celery
from celery.schedules import schedule
from celery.signals import after_task_publish, before_task_publish

PARAMS = json.loads(os.environ["BENCH_BEAT"])
BROKER = PARAMS.get("broker") or "memory://"

app = Celery("bench_beat")
app.conf.update(
    broker_url=BROKER,
    redbeat_redis_url=PARAMS["url"],
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
    if not BROKER.startswith("memory://"):
        return
    from kombu.transport.memory import Channel

    for queue in list(Channel.queues.values()):
        with queue.mutex:
            queue.queue.clear()
