"""``app.redbeat_conf``: celery-redbeat's ``RedBeatConfig``, an object code may read and change.

celery-redbeat code reads its settings from ``app.redbeat_conf`` and changes them there: it
replaces the static schedule with ``conf.schedule = {...}`` before the scheduler sets up, sets
``conf.lock_timeout`` or ``conf.lock_key`` in tests, and calls ``conf.either_or(name,
default)``. RedBeat itself runs on a frozen, checked :class:`~redbeat_core.config.RedBeatConfig`
(one value per app, shared by its scheduler and entries); this object shows celery-redbeat's
attributes over it and keeps the changes made to them. A scheduler built afterwards honours
the key prefix, lock key and lock timeout set here, as celery-redbeat's does; ``schedule`` is
the app's ``beat_schedule`` itself. Every other attribute is read through from the checked
config (``url``, ``schedule_key``, the celery-redbeat attributes the backends declare, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Final

from redbeat_core.config import RedBeatConfig

__all__ = ["AppConf"]

#: Attributes code may set here and a scheduler built afterwards honours.
CHANGEABLE: Final = ("key_prefix", "lock_key", "lock_timeout")


class AppConf:
    """celery-redbeat's ``RedBeatConfig`` surface (see the module's docstring).

    :param app: the Celery app (the default app when None).
    :param config: the app's checked config (read from the app when not given).
    """

    app: Any
    _config: RedBeatConfig
    _set: dict[str, Any]
    _applied: dict[str, Any]
    key_prefix: str
    lock_key: str | None
    #: The lock timeout the configuration sets, or None (celery-redbeat's value when unset;
    #: the scheduler then uses its default, 10 s in RedBeat).
    lock_timeout: float | None

    def __init__(self, app: Any = None, config: RedBeatConfig | None = None) -> None:
        from celery.app import app_or_default

        app = app_or_default(app)
        if config is None:
            from redbeat_core.runtime import get_runtime

            config = get_runtime(app).config
        object.__setattr__(self, "app", app)
        #: What code set here, and what of it the runtime was last built with.
        object.__setattr__(self, "_set", {})
        object.__setattr__(self, "_applied", {})
        self.refresh(config)

    @property
    def config(self) -> RedBeatConfig:
        """The checked config RedBeat runs on."""
        return self._config

    @property
    def schedule_key(self) -> str:
        return self.key_prefix + ":schedule"

    @property
    def statics_key(self) -> str:
        return self.key_prefix + ":statics"

    @property
    def schedule(self) -> Mapping[str, Any]:
        """The app's ``beat_schedule`` (celery-redbeat: setting it replaces it)."""
        return self.app.conf.beat_schedule or {}

    @schedule.setter
    def schedule(self, value: Mapping[str, Any]) -> None:
        self.app.conf.beat_schedule = value

    def either_or(self, name: str, default: Any = None) -> Any:
        """celery-redbeat's lookup: ``name`` (or its upper-case form) when the configuration
        has it, even set to a false value; else ``default``."""
        if name == name.upper():
            warnings.warn(
                f"Celery v4 installed, but detected Celery v3 configuration {name} "
                f"(use {name.lower()} instead).",
                UserWarning,
                stacklevel=2,
            )
        value = self.app.conf.first(name, name.upper())
        if self.is_key_in_conf(name):
            return value
        return value or default

    def is_key_in_conf(self, name: str) -> bool:
        """Whether the configuration has ``name``, in any case."""
        return name.upper() in {str(key).upper() for key in self.app.conf}

    def changes(self) -> dict[str, Any]:
        """What code set here (key prefix, lock key, lock timeout), for the runtime to honour."""
        return dict(self._set)

    def pending(self) -> bool:
        """Whether code set something here that the app's runtime does not run with yet."""
        return self._set != self._applied

    def refresh(self, config: RedBeatConfig) -> None:
        """Show ``config``, which the runtime was just built with (honouring :meth:`changes`)."""
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_applied", dict(self._set))
        for name, value in _changeable(config).items():
            object.__setattr__(
                self, name, self._set.get(name, value) if name == "lock_timeout" else value
            )

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("schedule_key", "statics_key"):
            raise AttributeError(
                f"{name} is the key prefix plus ':{name.removesuffix('_key')}': set key_prefix "
                "(or the redbeat_key_prefix setting) instead"
            )
        if name in CHANGEABLE:
            self._set[name] = value
        elif name != "schedule":
            warnings.warn(
                f"RedBeat reads {name!r} from the Celery configuration when it starts; setting "
                "it on app.redbeat_conf changes nothing. Set it in the Celery configuration "
                f"(only {', '.join(CHANGEABLE)} and schedule are read from here).",
                UserWarning,
                stacklevel=2,
            )
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._config, name)

    def __repr__(self) -> str:
        return f"<RedBeatConfig of {self.app.main!r}: {self._config!r}>"


def _changeable(config: RedBeatConfig) -> dict[str, Any]:
    explicit = config.settings.is_set("redbeat_lock_timeout")
    return {
        "key_prefix": config.key_prefix,
        "lock_key": config.lock_key,
        "lock_timeout": config.lock_timeout if explicit else None,
    }
