"""The ``redbeat`` distribution's plugin (entry point ``redbeat`` in the group ``redbeat``).

It brings the storage backends this distribution ships, so they load even when
``REDBEAT_DISABLE_PLUGIN_AUTOLOAD=1`` keeps third-party plugins out (without a backend no URL
works), and it says which extra provides a scheme that is not installed: the core knows no
backend, the product knows its extras.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Final

from redbeat_core import hookimpl
from redbeat_core.registry import BackendRegistry

#: The backends this distribution ships: plugin name -> plugin module (loaded when installed).
_BACKENDS: Final = {
    "redis": "redbeat_redis.plugin",
    "sentinel": "redbeat_sentinel.plugin",
    "cluster": "redbeat_cluster.plugin",
}

#: Registered with this plugin (see ``redbeat_core.plugins``): the backends that are installed.
redbeat_plugins: Final = {
    name: path for name, path in _BACKENDS.items() if find_spec(path.partition(".")[0])
}

_CORE_INSTALL: Final = (
    "redbeat-redis (a dependency of `redbeat`: reinstall RedBeat from a checkout or your wheels)"
)
#: What provides each scheme, for the error a URL with an uninstalled scheme raises.
SCHEME_PROVIDERS: Final = {
    "redis": _CORE_INSTALL,
    "rediss": _CORE_INSTALL,
    "unix": _CORE_INSTALL,
    "redis+sentinel": "the extra `redbeat[sentinel]`",
    "rediss+sentinel": "the extra `redbeat[sentinel]`",
    "redis-sentinel": "the extra `redbeat[sentinel]`",
    "redis+cluster": "the extra `redbeat[cluster]`",
    "rediss+cluster": "the extra `redbeat[cluster]`",
    "redis-cluster": "the extra `redbeat[cluster]`",
    "sqlite": "the SQLite example plugin: pip install ./examples/redbeat-sqlite",
}


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    for scheme, provider in SCHEME_PROVIDERS.items():
        registry.hint(scheme, provider)
