"""The plugin manager: a small typed facade over :class:`pluggy.PluginManager`.

Loading order: RedBeat's own defaults, the import paths in ``redbeat_plugins``, then the
``redbeat`` entry-point group. ``REDBEAT_DISABLE_PLUGIN_AUTOLOAD=1`` skips third-party entry
points (RedBeat's own backend distributions still load, or no URL would work);
``REDBEAT_BLOCK_PLUGINS=name1,name2`` blocks named plugins. ``check_pending()`` runs last, so a
misspelled hook implementation fails at start-up with the plugin's and the hook's names.

Observer hooks are called one implementation at a time: one that raises is logged once with the
plugin's name and the others still run. Strategy hooks are not isolated: a broken lock factory
must stop start-up, not leave the beat without a lock.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final, Self

import attrs
import pluggy

from redbeat_core import hookspecs
from redbeat_core.exceptions import PluginError
from redbeat_core.registry import BackendRegistry

if TYPE_CHECKING:
    from redbeat_core.codec import Codec
    from redbeat_core.config import RedBeatConfig
    from redbeat_core.typing import Backend, Fence, Lock

logger = logging.getLogger("celery.beat")

ENTRY_POINT_GROUP: Final = hookspecs.PROJECT_NAME
DISABLE_AUTOLOAD_ENV: Final = "REDBEAT_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV: Final = "REDBEAT_BLOCK_PLUGINS"
#: Distributions whose entry points always load: RedBeat's own backends.
FIRST_PARTY_DISTRIBUTIONS: Final = frozenset(
    {"redbeat", "redbeat-core", "redbeat-redis", "redbeat-sentinel", "redbeat-cluster"}
)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def _normalise(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-")


@attrs.define
class PluginManager:
    """RedBeat's plugin manager: one method per hook, so call sites are type-checked."""

    pm: pluggy.PluginManager = attrs.field(factory=lambda: pluggy.PluginManager("redbeat"))
    _failed: set[tuple[str, str]] = attrs.field(factory=set)

    def __attrs_post_init__(self) -> None:
        self.pm.add_hookspecs(hookspecs)

    # ------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, config: RedBeatConfig | None = None, *, autoload: bool | None = None) -> Self:
        """Build a manager with RedBeat's defaults, configured plugins and entry points."""
        manager = cls()
        from redbeat_core import defaults

        manager.register(defaults, name="redbeat.defaults")
        for path in config.plugins if config is not None else ():
            manager.register_import_path(path)
        if autoload is None:
            autoload = not _truthy(os.environ.get(DISABLE_AUTOLOAD_ENV))
        manager.load_entry_points(first_party_only=not autoload)
        manager.check_pending()
        return manager

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a plugin object or module. Blocked names are skipped (returns None)."""
        name = name or self.pm.get_canonical_name(plugin)
        if name in _blocked_names():
            logger.info("redbeat: plugin %s is blocked by %s", name, BLOCK_ENV)
            self.pm.set_blocked(name)
            return None
        if self.pm.has_plugin(name) or self.pm.is_registered(plugin):
            return name
        try:
            return self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} is invalid: {exc}") from exc

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (tests register plugins in fixtures and remove them after)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)

    def register_import_path(self, path: str) -> None:
        """Import ``module`` or ``module:attribute`` and register it, named by its path."""
        module_name, _, attribute = path.partition(":")
        try:
            target: object = importlib.import_module(module_name)
            if attribute:
                target = getattr(target, attribute)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"cannot load plugin {path!r} from redbeat_plugins: {exc}; check the import path "
                "and that its distribution is installed in this environment"
            ) from exc
        self.register(target, name=path)

    def load_entry_points(self, *, first_party_only: bool = False) -> None:
        """Register every plugin of the ``redbeat`` entry-point group."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = _normalise(ep.dist.name) if ep.dist is not None else ""
            if first_party_only and dist not in FIRST_PARTY_DISTRIBUTIONS:
                continue
            name = ep.name if dist in FIRST_PARTY_DISTRIBUTIONS else f"{dist}:{ep.name}"
            if name in _blocked_names() or ep.name in _blocked_names():
                self.pm.set_blocked(name)
                continue
            if self.pm.has_plugin(name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"cannot load plugin {ep.name!r} (entry point {ep.value!r} of {dist or '?'}): "
                    f"{exc}; reinstall it, or block it with {BLOCK_ENV}={ep.name}"
                ) from exc
            self.register(plugin, name=name)

    def check_pending(self) -> None:
        """Fail on hook implementations that match no hookspec (usually a typo), naming each
        plugin and hook."""
        unknown = sorted(
            f"{self.pm.get_name(impl.plugin)}: {hook_name}"
            for hook_name, caller in vars(self.pm.hook).items()
            if isinstance(caller, pluggy.HookCaller) and not caller.has_spec()
            for impl in caller.get_hookimpls()
            if not impl.optionalhook
        )
        if unknown:
            raise PluginError(
                f"unknown hook implementation(s): {'; '.join(unknown)}. Hook names start with "
                "redbeat_ and are listed in the hook reference; fix the spelling or mark the "
                "hookimpl optionalhook=True"
            )

    # ------------------------------------------------------------------------- registration hooks

    def make_registry(self) -> BackendRegistry:
        registry = BackendRegistry()
        self.pm.hook.redbeat_register_backends.call_historic(kwargs={"registry": registry})
        return registry

    def configure_codec(self, codec: Codec) -> None:
        self.pm.hook.redbeat_configure_converter.call_historic(kwargs={"codec": codec})

    # ------------------------------------------------------------------------- strategy hooks

    def make_lock(self, config: RedBeatConfig, backend: Backend) -> Lock:
        lock: Lock | None = self.pm.hook.redbeat_make_lock(config=config, backend=backend)
        if lock is None:  # pragma: no cover - the default implementation always answers
            raise PluginError("no plugin built a lock; is redbeat.defaults blocked?")
        return lock

    # ------------------------------------------------------------------------- observers

    def has_impls(self, hook_name: str) -> bool:
        """Whether any plugin implements a hook: lets the hot path skip building arguments."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation of an observer hook, isolating failures per plugin."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        for impl in reversed(impls):  # pluggy's order: last registered first
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception:
                key = (impl.plugin_name, hook_name)
                if key not in self._failed:
                    self._failed.add(key)
                    logger.exception(
                        "redbeat: plugin %s raised in %s; the beat carries on (further errors "
                        "from this plugin in this hook are logged at debug level)",
                        impl.plugin_name,
                        hook_name,
                    )
                else:
                    logger.debug("redbeat: plugin %s raised in %s again", *key, exc_info=True)

    def scheduler_started(self, scheduler: Any) -> None:
        self.notify("redbeat_scheduler_started", scheduler=scheduler)

    def scheduler_stopped(self, scheduler: Any) -> None:
        self.notify("redbeat_scheduler_stopped", scheduler=scheduler)

    def tick(self, scheduler: Any, *, leader: bool, due: int, next_wake: float) -> None:
        self.notify(
            "redbeat_tick", scheduler=scheduler, leader=leader, due=due, next_wake=next_wake
        )

    def before_dispatch(self, scheduler: Any, entries: Sequence[Any]) -> None:
        self.notify("redbeat_before_dispatch", scheduler=scheduler, entries=entries)

    def after_dispatch(self, scheduler: Any, dispatched: Sequence[Any]) -> None:
        self.notify("redbeat_after_dispatch", scheduler=scheduler, dispatched=dispatched)

    def dispatch_failed(self, scheduler: Any, entry: Any, exc: BaseException) -> None:
        self.notify("redbeat_dispatch_failed", scheduler=scheduler, entry=entry, exc=exc)

    def entry_quarantined(self, scheduler: Any, name: str, reason: str) -> None:
        self.notify("redbeat_entry_quarantined", scheduler=scheduler, name=name, reason=reason)

    def entry_saved(self, app: Any, entry: Any) -> None:
        self.notify("redbeat_entry_saved", app=app, entry=entry)

    def entry_deleted(self, app: Any, name: str) -> None:
        self.notify("redbeat_entry_deleted", app=app, name=name)

    def lock_acquired(self, scheduler: Any, fence: Fence | None) -> None:
        self.notify("redbeat_lock_acquired", scheduler=scheduler, fence=fence)

    def lock_lost(self, scheduler: Any, reason: str) -> None:
        self.notify("redbeat_lock_lost", scheduler=scheduler, reason=reason)
