"""One RedBeat runtime per Celery app: plugins, settings, codec and storage, built once.

``RedBeatSchedulerEntry.save()`` is called from web processes and scripts that have no
scheduler, so the runtime hangs off the app, not off the scheduler. It is built lazily on first
use, in this order: the plugins (RedBeat's defaults, ``redbeat_plugins``, entry points), the
settings they declare (read and checked now: for a beat, at start-up), the backend registry and
the codec. The backend itself connects on first use.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import attrs

from redbeat_core.celeryconf import CeleryConf
from redbeat_core.codec import Codec
from redbeat_core.config import RedBeatConfig, plugin_paths
from redbeat_core.plugins import PluginManager
from redbeat_core.registry import BackendRegistry
from redbeat_core.settings import SettingRegistry
from redbeat_core.typing import Backend, ScheduleStore

RUNTIME_ATTRIBUTE: Final = "redbeat_runtime"
CONF_ATTRIBUTE: Final = "redbeat_conf"
_build_lock = threading.RLock()


@attrs.define
class Runtime:
    """Everything RedBeat builds for one app."""

    app: Any
    config: RedBeatConfig
    plugins: PluginManager
    codec: Codec
    registry: BackendRegistry
    settings: SettingRegistry
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


def ensure_conf(app: Any) -> RedBeatConfig:
    """The app's :class:`RedBeatConfig`, read once and kept on ``app.redbeat_conf``.

    A config object assigned there by the user (celery-redbeat allowed it) is used as is.
    """
    return get_runtime(app).config


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
        runtime = _build(app, overrides)
        setattr(app, RUNTIME_ATTRIBUTE, runtime)
        setattr(app, CONF_ATTRIBUTE, runtime.config)
        return runtime


def _build(app: Any, overrides: dict[str, Any]) -> Runtime:
    assigned = getattr(app, CONF_ATTRIBUTE, None)
    if isinstance(assigned, RedBeatConfig) and not overrides:
        plugins = PluginManager.load(assigned.plugins)  # the user's config, used as it is
        settings = plugins.settings_registry()
        config = assigned
    else:
        conf = CeleryConf(app)
        plugins = PluginManager.load(plugin_paths(conf))
        settings = plugins.settings_registry()
        config = RedBeatConfig.from_settings(settings.read(conf), app=app, **overrides)
        settings.warn_undeclared(conf)
    settings.run_checks(config)
    registry = plugins.make_registry()
    config = registry.adjust(config)
    codec = Codec()
    plugins.configure_codec(codec)
    return Runtime(
        app=app,
        config=config,
        plugins=plugins,
        codec=codec,
        registry=registry,
        settings=settings,
    )
