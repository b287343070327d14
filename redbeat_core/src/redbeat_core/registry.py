"""Storage backends by URL scheme.

Backends register themselves through the ``redbeat_register_backends`` hook; the scheduler picks
one by the scheme of its storage URL. An unknown scheme fails at start-up with what to install,
because "no backend for scheme X" alone does not tell a user that: a distribution that knows
where a scheme comes from (the ``redbeat`` distribution knows its extras) says so with
:meth:`BackendRegistry.hint`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from redbeat_core.exceptions import DuplicateBackendError, UnknownBackendError
from redbeat_core.urls import mask_url, url_scheme

if TYPE_CHECKING:
    from collections.abc import Callable

    from redbeat_core.config import RedBeatConfig
    from redbeat_core.typing import Backend, BackendFactory

    ConfigAdjuster = Callable[[RedBeatConfig], RedBeatConfig]
    Router = Callable[[RedBeatConfig], str | None]


@attrs.define
class BackendRegistry:
    """Scheme -> backend factory, filled by plugins."""

    _factories: dict[str, BackendFactory] = attrs.field(factory=dict)
    _owners: dict[str, str] = attrs.field(factory=dict)
    _adjusters: dict[str, ConfigAdjuster] = attrs.field(factory=dict)
    _routers: list[tuple[Router, str]] = attrs.field(factory=list)
    _hints: dict[str, str] = attrs.field(factory=dict)

    def register(
        self,
        scheme: str,
        factory: BackendFactory,
        *,
        owner: str | None = None,
        adjust_config: ConfigAdjuster | None = None,
    ) -> None:
        """Handle ``scheme://`` URLs with ``factory``. Registering a scheme twice is an error
        naming both registrants, unless the same factory is registered again.

        ``adjust_config`` lets a backend settle settings that depend on it before any key is
        computed (a clustered store may need a hash tag in the default prefix, and reject a custom
        prefix without one). It gets the checked config and returns it, changed or not; it
        must not do I/O."""
        key = scheme.lower()
        who = owner or str(getattr(factory, "__module__", None) or repr(factory))
        existing = self._factories.get(key)
        if existing is not None and existing is not factory:
            raise DuplicateBackendError(
                f"two plugins register the URL scheme '{key}://': {self._owners[key]} and {who}; "
                "uninstall or block one of them (REDBEAT_BLOCK_PLUGINS)"
            )
        self._factories[key] = factory
        self._owners[key] = who
        if adjust_config is not None:
            self._adjusters[key] = adjust_config
        else:
            self._adjusters.pop(key, None)

    def route(self, router: Router, *, owner: str | None = None) -> None:
        """Let a backend claim configs of another scheme by their options.

        ``router(config)`` returns the scheme that should handle the config, or None. It exists
        for URLs whose options, not their scheme, say which backend they need (celery-redbeat
        selects its cluster client by an option of an ordinary URL), and for configs a backend
        serves whatever the URL (a client the user assigned to the app); ``config.url`` may
        then be empty. No I/O.
        """
        self._routers.append((router, owner or str(getattr(router, "__module__", router))))

    def hint(self, scheme: str, provider: str) -> None:
        """Say what provides ``scheme`` when it is not installed (``"the extra
        `redbeat[extra]`"``), for the error an unknown scheme raises."""
        self._hints.setdefault(scheme.lower(), provider)

    def scheme_for(self, config: RedBeatConfig) -> str:
        """The scheme whose backend handles ``config``: a router's answer, or the URL's (a
        config without a URL that no router claims is refused, naming the setting)."""
        for router, _owner in self._routers:
            routed = router(config)
            if routed:
                return routed.lower()
        if not config.url:
            from redbeat_core.config import missing_url

            raise missing_url(config)
        return url_scheme(config.url)

    @property
    def schemes(self) -> list[str]:
        return sorted(self._factories)

    def adjust(self, config: RedBeatConfig) -> RedBeatConfig:
        """The config as the URL's backend needs it (unchanged for most backends)."""
        adjuster = self._adjusters.get(self.scheme_for(config))
        return config if adjuster is None else adjuster(config)

    def create(self, config: RedBeatConfig, app: Any) -> Backend:
        """Build the backend for ``config.url``."""
        scheme = self.scheme_for(config)
        factory = self._factories.get(scheme)
        if factory is None:
            provider = self._hints.get(scheme)
            hint = (
                f"Install {provider}."
                if provider
                else "Install the plugin that provides it, or fix the URL."
            )
            raise UnknownBackendError(
                config.url_setting, mask_url(config.url), scheme, self.schemes, hint
            )
        return factory(config, app)
