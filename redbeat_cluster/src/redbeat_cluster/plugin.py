"""Registers the Redis Cluster backend with RedBeat (entry point ``cluster`` in the group
``redbeat``): the schemes ``redis+cluster``, ``rediss+cluster`` and celery-redbeat's
``redis-cluster``, each with :func:`~redbeat_cluster.backend.check_config` (the single-slot key
policy, and no ``redbeat_replica_acks``) as its ``adjust_config``.

celery-redbeat's other spelling, ``redbeat_redis_options={'cluster': True}`` on a ``redis://``
or ``rediss://`` URL, belongs to a scheme the Redis backend owns: :func:`route` tells the
registry which cluster scheme such a config means. (Without this extra installed, the Redis
backend refuses that form with an error naming ``redbeat_redis_options['cluster']``.)
"""

from __future__ import annotations

from redbeat_cluster.backend import check_config, create_backend
from redbeat_cluster.connection import CLUSTER_SCHEMES, OPTION_SCHEMES, scheme_of, uses_cluster
from redbeat_core.config import RedBeatConfig
from redbeat_core.hookspecs import hookimpl
from redbeat_core.registry import BackendRegistry

OWNER = "redbeat-cluster"


def route(config: RedBeatConfig) -> str | None:
    """The cluster scheme for celery-redbeat's ``{'cluster': True}`` on a ``redis://`` or
    ``rediss://`` URL; None for every other config."""
    scheme = scheme_of(config.url)
    if scheme not in OPTION_SCHEMES or not uses_cluster(config):
        return None
    return "rediss+cluster" if scheme == "rediss" else "redis+cluster"


@hookimpl
def redbeat_register_backends(registry: BackendRegistry) -> None:
    for scheme in CLUSTER_SCHEMES:
        registry.register(scheme, create_backend, owner=OWNER, adjust_config=check_config)
    registry.route(route, owner=OWNER)
