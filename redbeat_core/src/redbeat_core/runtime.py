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

from redbeat_core.appconf import AppConf
from redbeat_core.celeryconf import CeleryConf
from redbeat_core.codec import Codec
from redbeat_core.config import URL_SETTING, RedBeatConfig, plugin_paths
from redbeat_core.plugins import PluginManager
from redbeat_core.policy import PolicyDefaults
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
    _policy_defaults: PolicyDefaults | None = None

    @property
    def policy_defaults(self) -> PolicyDefaults:
        """The app-wide scheduling policy (:mod:`redbeat_core.policy`), read once."""
        if self._policy_defaults is None:
            self._policy_defaults = PolicyDefaults.from_settings(self.config.settings)
        return self._policy_defaults

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


def ensure_conf(app: Any) -> AppConf:
    """celery-redbeat's ``app.redbeat_conf``: the settings over the app's checked
    :class:`RedBeatConfig`, which code may read and change (see :mod:`redbeat_core.appconf`).

    A config assigned there by the user (celery-redbeat allowed it) is used: a checked
    :class:`RedBeatConfig` as it is, a ``redbeat.schedulers.RedBeatConfig`` with its changes.
    """
    runtime = get_runtime(app)
    conf = getattr(app, CONF_ATTRIBUTE, None)
    if not isinstance(conf, AppConf):  # replaced after the runtime was built
        _show_conf(app, runtime.config)
        conf = getattr(app, CONF_ATTRIBUTE)
    assert isinstance(conf, AppConf)
    return conf


def get_runtime(app: Any, **overrides: Any) -> Runtime:
    """The app's runtime, built on first use. ``overrides`` (from a scheduler's constructor),
    and changes code made to ``app.redbeat_conf`` since, force a fresh read of the settings."""
    runtime = getattr(app, RUNTIME_ATTRIBUTE, None)
    if isinstance(runtime, Runtime) and not overrides and not _conf_changed(app):
        return runtime
    with _build_lock:
        runtime = getattr(app, RUNTIME_ATTRIBUTE, None)
        if isinstance(runtime, Runtime) and not overrides and not _conf_changed(app):
            return runtime
        if isinstance(runtime, Runtime):
            runtime.close()
        conf = getattr(app, CONF_ATTRIBUTE, None)
        if isinstance(conf, AppConf):  # what code set on app.redbeat_conf, then the arguments
            overrides = {**conf.changes(), **overrides}
        runtime = _build(app, overrides)
        setattr(app, RUNTIME_ATTRIBUTE, runtime)
        _show_conf(app, runtime.config)
        return runtime


def _conf_changed(app: Any) -> bool:
    conf = getattr(app, CONF_ATTRIBUTE, None)
    return isinstance(conf, AppConf) and conf.pending()


def _show_conf(app: Any, config: RedBeatConfig) -> None:
    """Keep ``app.redbeat_conf`` showing ``config``: the same object when there is one (code
    may hold it), with the changes code made to it."""
    conf = getattr(app, CONF_ATTRIBUTE, None)
    if isinstance(conf, AppConf):
        conf.refresh(config)
    else:
        setattr(app, CONF_ATTRIBUTE, AppConf(app, config))


def _build(app: Any, overrides: dict[str, Any]) -> Runtime:
    assigned = getattr(app, CONF_ATTRIBUTE, None)
    read = not isinstance(assigned, RedBeatConfig) or bool(overrides)
    if isinstance(assigned, RedBeatConfig) and not read:
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
    if read:  # now that a backend is chosen: it may not use the URL read from broker_url
        config.settings.warn_fallbacks(unused=() if config.url else (URL_SETTING,))
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
