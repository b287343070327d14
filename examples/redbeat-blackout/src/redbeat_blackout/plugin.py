"""The hooks: declare the settings, decide about due runs, say at start-up what is blacked out.

Loaded through the entry point ``blackout`` in the group ``redbeat`` once the distribution is
installed (plugin name ``redbeat-blackout:blackout``), or by import path with
``redbeat_plugins = ["redbeat_blackout.plugin"]`` (which also works when
``REDBEAT_DISABLE_PLUGIN_AUTOLOAD=1`` stops entry-point loading).
"""

from __future__ import annotations

import logging

from redbeat_blackout.policy import Blackout
from redbeat_blackout.settings import register
from redbeat_core import DueRuns, RedBeatScheduler, SettingRegistry, hookimpl

logger = logging.getLogger(__name__)


@hookimpl
def redbeat_register_settings(registry: SettingRegistry) -> None:
    register(registry)


@hookimpl
def redbeat_decide_runs(scheduler: RedBeatScheduler, runs: DueRuns) -> None:
    """Skip or postpone the runs that fall in a blackout window. RedBeat logs each one with
    this plugin's name and the reason, stores it, and tells ``redbeat_runs_skipped``."""
    blackout = Blackout.from_settings(scheduler.config.settings)
    if blackout.enabled:
        blackout.decide(runs)


@hookimpl
def redbeat_scheduler_started(scheduler: RedBeatScheduler) -> None:
    """Say once what is blacked out, so the beat's log explains the runs it does not send."""
    blackout = Blackout.from_settings(scheduler.config.settings)
    if blackout.enabled:
        logger.info("redbeat-blackout: %s", blackout.describe())
