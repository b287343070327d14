"""One RedBeat runtime per Celery app: settings, plugins, codec and storage, built once.

``RedBeatSchedulerEntry.save()`` is called from web processes and scripts that have no
scheduler, so the runtime hangs off the app, not off the scheduler. It is built lazily on first
use; the settings are read and checked at that moment (for a beat: at start-up).
"""

from __future__ import annotations

import threading
from typing import Any, Final

import attrs

from redbeat_core.codec import Codec
from redbeat_core.config import RedBeatConfig
from redbeat_core.plugins import PluginManager
from redbeat_core.registry import BackendRegistry
from redbeat_core.typing import Backend, ScheduleStore

RUNTIME_ATTRIBUTE: Final = "redbeat_runtime"
CONF_ATTRIBUTE: Final = "redbeat_conf"
_build_lock = threading.Lock()


@attrs.define
class Runtime:
    """Everything RedBeat builds for one app."""

    app: Any
    config: RedBeatConfig
    plugins: PluginManager
    codec: Codec
    registry: BackendRegistry
    _backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        """The storage backend for ``config.url``, created (and connected) on first use."""
        if self._backend is None:
            with _build_lock:
                if self._backend is None:
                    self._backend = self.registry.create(self.config, self.app)
        return self._backend

    @property
    def store(self) -> ScheduleStore:
        return self.backend.store

    def close(self) -> None:
        if self._backend is not None:
            self._backend.store.close()


def ensure_conf(app: Any, **overrides: Any) -> RedBeatConfig:
    """The app's :class:`RedBeatConfig`, read once and kept on ``app.redbeat_conf``.

    A config object assigned there by the user (celery-redbeat allowed it) is used as is.
    """
    config = getattr(app, CONF_ATTRIBUTE, None)
    if isinstance(config, RedBeatConfig) and not overrides:
        return config
    config = RedBeatConfig.from_app(app, **overrides)
    setattr(app, CONF_ATTRIBUTE, config)
    return config


def get_runtime(app: Any, **overrides: Any) -> Runtime:
    """The app's runtime, built on first use. ``overrides`` (from a scheduler's constructor)
    force a fresh read of the settings."""
    runtime = getattr(app, RUNTIME_ATTRIBUTE, None)
    if isinstance(runtime, Runtime) and not overrides:
        return runtime
    with _build_lock:
        runtime = getattr(app, RUNTIME_ATTRIBUTE, None)
        if isinstance(runtime, Runtime) and not overrides:
            return runtime
        if isinstance(runtime, Runtime):
            runtime.close()
        config = ensure_conf(app, **overrides)
        plugins = PluginManager.load(config)
        registry = plugins.make_registry()
        adjusted = registry.adjust(config)
        if adjusted is not config:
            config = adjusted
            setattr(app, CONF_ATTRIBUTE, config)
        codec = Codec()
        plugins.configure_codec(codec)
        runtime = Runtime(app=app, config=config, plugins=plugins, codec=codec, registry=registry)
        setattr(app, RUNTIME_ATTRIBUTE, runtime)
        return runtime
