"""The plugin manager: a small typed facade over :class:`pluggy.PluginManager` (tox 4's style).

Loading order: RedBeat's own plugins (``redbeat.defaults``, ``redbeat.policies`` and
``redbeat.overlap``), the import paths in ``redbeat_plugins``, then the ``redbeat`` entry-point
group. ``REDBEAT_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the entry points of the ``redbeat`` and
``redbeat-core`` distributions (the ``redbeat`` distribution's plugin brings the backends it
ships, or no URL would work); ``REDBEAT_BLOCK_PLUGINS=name1,name2`` blocks named plugins. A
plugin may bring others: a module attribute ``redbeat_plugins``, a mapping of plugin names to
import paths, is registered with it (as pytest's ``pytest_plugins``). ``check_pending()`` runs
last, so a misspelled hook implementation fails at start-up with the plugin's and the hook's
names.

Every hook is called through pluggy (``pm.hook``), so ``wrapper=True`` implementations,
``tryfirst``/``trylast``, tracing and ``add_hookcall_monitoring`` work as pluggy documents. An
observer or decision implementation that raises is logged once with its plugin's name, and the
others still run: each such implementation is guarded when its plugin is registered. Strategy
and registration hooks are not guarded: a broken lock factory or backend must stop start-up,
not leave the beat without a lock or a store.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Final, Generic, ParamSpec, Self

import pluggy

from redbeat_core import hookspecs
from redbeat_core.exceptions import PluginError
from redbeat_core.registry import BackendRegistry
from redbeat_core.settings import SettingRegistry

if TYPE_CHECKING:
    from collections.abc import Iterable

    from redbeat_core.codec import Codec
    from redbeat_core.config import RedBeatConfig
    from redbeat_core.doctor import Finding
    from redbeat_core.typing import Backend, Lock

logger = logging.getLogger("celery.beat")

P = ParamSpec("P")

ENTRY_POINT_GROUP: Final = hookspecs.PROJECT_NAME
DISABLE_AUTOLOAD_ENV: Final = "REDBEAT_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV: Final = "REDBEAT_BLOCK_PLUGINS"
#: Distributions whose entry points load even with autoload disabled: RedBeat itself (the
#: ``redbeat`` distribution's plugin brings the backends it ships) and its core.
FIRST_PARTY_DISTRIBUTIONS: Final = frozenset({"redbeat", "redbeat-core"})
#: A plugin's attribute naming the plugins it brings: ``{name: "package.module"}``.
BUNDLE_ATTRIBUTE: Final = "redbeat_plugins"

#: The plugin whose guarded hook implementation is running (see :func:`current_plugin`).
_running_plugin: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "redbeat_running_plugin", default=None
)


def current_plugin() -> str | None:
    """The name of the plugin whose observer or decision implementation is running, or None:
    how a skip is attributed to the plugin that asked for it."""
    return _running_plugin.get()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def _distribution(ep: EntryPoint) -> str:
    """The normalised name of the distribution that declares ``ep`` ("" when unknown)."""
    return ep.dist.name.lower().replace("_", "-") if ep.dist is not None else ""


def _guarded_hooks() -> frozenset[str]:
    """Hooks whose implementations are isolated: observers and decisions (neither firstresult,
    whose answer decides, nor historic, which register what the beat runs on)."""
    names = set()
    for name, spec in vars(hookspecs).items():
        options = getattr(spec, f"{hookspecs.PROJECT_NAME}_spec", None)
        if isinstance(options, dict) and not (
            options.get("firstresult") or options.get("historic")
        ):
            names.add(name)
    return frozenset(names)


GUARDED_HOOKS: Final = _guarded_hooks()


class _Failures:
    """Which (plugin, hook) pairs have failed: the first failure is logged with its traceback,
    later ones at debug level, so a plugin failing every tick does not flood the log."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def report(self, plugin: str, hook: str) -> None:
        key = (plugin, hook)
        if key not in self._seen:
            self._seen.add(key)
            logger.exception(
                "redbeat: plugin %s raised in %s; the beat carries on (further errors from this "
                "plugin in this hook are logged at debug level)",
                plugin,
                hook,
            )
        else:
            logger.debug("redbeat: plugin %s raised in %s again", plugin, hook, exc_info=True)


def _guard(
    function: Callable[..., Any], plugin: str, hook: str, failures: _Failures
) -> Callable[..., Any]:
    """``function``, isolated: an exception is reported and swallowed (the hook's result is
    ignored anyway), and :func:`current_plugin` names ``plugin`` while it runs."""

    @functools.wraps(function)
    def guarded(*args: Any) -> Any:
        token = _running_plugin.set(plugin)
        try:
            return function(*args)
        except Exception:
            failures.report(plugin, hook)
            return None
        finally:
            _running_plugin.reset(token)

    return guarded


class Hook(Generic[P]):
    """One observer or decision hook, typed by its specification: ``plugins.tick(...)`` is
    checked against ``redbeat_tick``'s signature, and ``if plugins.tick:`` tells whether any
    plugin implements it, so the hot path skips building arguments nobody reads.

    Calls go through pluggy's hook caller. Implementations registered through
    :meth:`PluginManager.register` are guarded one by one; one registered on ``pm`` directly is
    not, so the call itself is guarded too, and a failure there is logged the same way.
    """

    __slots__ = ("_caller", "_failures", "_params", "name")

    def __init__(
        self, spec: Callable[P, object], caller: pluggy.HookCaller, failures: _Failures
    ) -> None:
        self.name: str = spec.__name__
        self._params = tuple(inspect.signature(spec).parameters)
        self._caller = caller
        self._failures = failures

    def __bool__(self) -> bool:
        return bool(self._caller.get_hookimpls())

    def implemented_only_by(self, *names: str) -> bool:
        """Whether only the plugins ``names`` implement this hook (RedBeat's own policy plugins
        for the decision hook: a tick then calls it only when a run has a policy to apply)."""
        return all(impl.plugin_name in names for impl in self._caller.get_hookimpls())

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        # pluggy takes hook arguments by name only: name the positional ones as the spec does.
        named = dict(zip(self._params, args, strict=False)) | kwargs
        try:
            self._caller(**named)
        except Exception:
            self._failures.report("(registered without redbeat's manager)", self.name)


class PluginManager:
    """RedBeat's plugin manager: one typed attribute or method per hook, so call sites are
    type-checked. ``pm`` is the underlying :class:`pluggy.PluginManager`."""

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self.pm = pm or pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        failures = self._failures = _Failures()
        hook = self.pm.hook
        # Observers (return values ignored; one that raises is logged and the others run).
        self.scheduler_started = Hook(
            hookspecs.redbeat_scheduler_started, hook.redbeat_scheduler_started, failures
        )
        self.scheduler_stopped = Hook(
            hookspecs.redbeat_scheduler_stopped, hook.redbeat_scheduler_stopped, failures
        )
        self.tick = Hook(hookspecs.redbeat_tick, hook.redbeat_tick, failures)
        self.before_dispatch = Hook(
            hookspecs.redbeat_before_dispatch, hook.redbeat_before_dispatch, failures
        )
        self.after_dispatch = Hook(
            hookspecs.redbeat_after_dispatch, hook.redbeat_after_dispatch, failures
        )
        self.dispatch_failed = Hook(
            hookspecs.redbeat_dispatch_failed, hook.redbeat_dispatch_failed, failures
        )
        self.runs_skipped = Hook(
            hookspecs.redbeat_runs_skipped, hook.redbeat_runs_skipped, failures
        )
        self.entry_quarantined = Hook(
            hookspecs.redbeat_entry_quarantined, hook.redbeat_entry_quarantined, failures
        )
        self.entry_saved = Hook(hookspecs.redbeat_entry_saved, hook.redbeat_entry_saved, failures)
        self.entry_deleted = Hook(
            hookspecs.redbeat_entry_deleted, hook.redbeat_entry_deleted, failures
        )
        self.lock_acquired = Hook(
            hookspecs.redbeat_lock_acquired, hook.redbeat_lock_acquired, failures
        )
        self.lock_lost = Hook(hookspecs.redbeat_lock_lost, hook.redbeat_lock_lost, failures)
        # Decisions (plugins mark the runs they skip or postpone).
        self.decide_runs = Hook(hookspecs.redbeat_decide_runs, hook.redbeat_decide_runs, failures)

    # ------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, paths: Iterable[str] = (), *, autoload: bool | None = None) -> Self:
        """A manager with RedBeat's defaults, the plugins at ``paths`` (the setting
        ``redbeat_plugins``) and the ``redbeat`` entry points."""
        manager = cls()
        from redbeat_core import defaults, overlap, policies

        manager.register(defaults, name="redbeat.defaults")
        manager.register(policies, name=policies.PLUGIN_NAME)
        manager.register(overlap, name=overlap.PLUGIN_NAME)
        for path in paths:
            manager.register_import_path(path, setting="redbeat_plugins")
        if autoload is None:
            autoload = not _truthy(os.environ.get(DISABLE_AUTOLOAD_ENV))
        manager.load_entry_points(first_party_only=not autoload)
        manager.check_pending()
        return manager

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a plugin object or module, and the plugins it brings (its
        ``redbeat_plugins`` mapping). Blocked names are skipped (returns None)."""
        name = name or self.pm.get_canonical_name(plugin)
        if name in _blocked_names():
            logger.info("redbeat: plugin %s is blocked by %s", name, BLOCK_ENV)
            self.pm.set_blocked(name)
            return None
        if self.pm.has_plugin(name) or self.pm.is_registered(plugin):
            return name
        try:
            registered = self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} is invalid: {exc}") from exc
        if registered is not None:
            self._guard_impls(plugin, registered)
            bundle = getattr(plugin, BUNDLE_ATTRIBUTE, None)
            if isinstance(bundle, Mapping):
                for bundled_name, path in bundle.items():
                    self.register_import_path(path, name=bundled_name, setting=name)
        return registered

    def _guard_impls(self, plugin: object, name: str) -> None:
        """Isolate the new plugin's observer and decision implementations (see the module's
        docstring). The wrapper keeps the function's signature, so pluggy passes it the same
        arguments; ``wrapper=True`` implementations are left as they are."""
        for impl in self.pm.get_hookcallers(plugin) or ():
            if impl.name not in GUARDED_HOOKS:
                continue
            for hookimpl in impl.get_hookimpls():
                if hookimpl.plugin is plugin and not (hookimpl.wrapper or hookimpl.hookwrapper):
                    # HookImpl.function is pluggy's public attribute; replacing it is the one
                    # way to isolate one implementation while every call goes through pluggy.
                    setattr(  # noqa: B010
                        hookimpl,
                        "function",
                        _guard(hookimpl.function, name, impl.name, self._failures),
                    )

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (tests register plugins in fixtures and remove them after)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin, name=name)

    def register_import_path(
        self, path: str, *, name: str | None = None, setting: str = "redbeat_plugins"
    ) -> None:
        """Import ``module`` or ``module:attribute`` and register it, named ``name`` or by its
        path. ``setting`` says where the path came from, for the error."""
        module_name, _, attribute = path.partition(":")
        try:
            target: object = importlib.import_module(module_name)
            if attribute:
                target = getattr(target, attribute)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"cannot load plugin {path!r} from {setting}: {exc}; check the import path "
                "and that its distribution is installed in this environment"
            ) from exc
        self.register(target, name=name or path)

    def load_entry_points(self, *, first_party_only: bool = False) -> None:
        """Register every plugin of the ``redbeat`` entry-point group, RedBeat's own first (so
        the plugins the ``redbeat`` distribution brings get their short names)."""
        found = sorted(
            entry_points(group=ENTRY_POINT_GROUP),
            key=lambda ep: _distribution(ep) not in FIRST_PARTY_DISTRIBUTIONS,
        )
        for ep in found:
            dist = _distribution(ep)
            own = dist in FIRST_PARTY_DISTRIBUTIONS
            if first_party_only and not own:
                continue
            name = ep.name if own else f"{dist}:{ep.name}"
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

    def settings_registry(self) -> SettingRegistry:
        """Every setting declared by the loaded plugins (the core's through its defaults)."""
        registry = SettingRegistry()
        self.pm.hook.redbeat_register_settings.call_historic(kwargs={"registry": registry})
        return registry

    def configure_codec(self, codec: Codec) -> None:
        self.pm.hook.redbeat_configure_converter.call_historic(kwargs={"codec": codec})

    # ------------------------------------------------------------------------- strategy hooks

    def doctor(self, app: Any, backend: Backend) -> list[Finding]:
        """Every plugin's ``redbeat_doctor`` findings, in plugin order."""
        results = self.pm.hook.redbeat_doctor(app=app, backend=backend)
        return [finding for found in reversed(results) if found for finding in found]

    def make_lock(self, config: RedBeatConfig, backend: Backend) -> Lock:
        lock: Lock | None = self.pm.hook.redbeat_make_lock(config=config, backend=backend)
        if lock is None:  # pragma: no cover - the default implementation always answers
            raise PluginError("no plugin built a lock; is redbeat.defaults blocked?")
        return lock
