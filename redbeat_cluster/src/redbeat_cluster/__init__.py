"""RedBeat's Redis Cluster backend: ``redis+cluster://``, ``rediss+cluster://`` and
celery-redbeat's ``redis-cluster://``, with every key in one hash slot (prefix ``{redbeat}:``)."""

from redbeat_cluster.backend import (
    ClusterBackend,
    ClusterRetry,
    create_backend,
    with_client,
)
from redbeat_cluster.connection import ClusterTarget, build_client, cluster_target, uses_cluster
from redbeat_cluster.keys import CLUSTER_KEY_PREFIX, adjust_config, hash_tag, tagged_prefix

__all__ = [
    "CLUSTER_KEY_PREFIX",
    "ClusterBackend",
    "ClusterRetry",
    "ClusterTarget",
    "adjust_config",
    "build_client",
    "cluster_target",
    "create_backend",
    "hash_tag",
    "tagged_prefix",
    "uses_cluster",
    "with_client",
]
