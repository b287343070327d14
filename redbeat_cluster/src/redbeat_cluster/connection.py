"""Building the ``RedisCluster`` client from RedBeat's settings.

Four spellings reach a cluster:

* ``redis+cluster://[user:password@]h1:7000,h2:7001[/0][?option=value&...]``: start-up nodes
  in the URL (port 6379 when omitted, ``[::1]:7000`` for IPv6), query options typed as
  redis-py's ``from_url`` types them.
* ``rediss+cluster://...``: the same over TLS. The certificate is verified unless
  ``redbeat_redis_use_ssl`` (a dict of ``ssl_*`` options) says otherwise.
* celery-redbeat's ``redis-cluster://`` with ``redbeat_redis_options['startup_nodes']``: a list
  of ``{"host": ..., "port": ...}`` dicts (the port may be a string), redis-py ``ClusterNode``
  objects, ``(host, port)`` pairs or ``"host:port"`` strings. celery-redbeat 2.4.2 passes the
  dicts straight to redis-py, which since 5.0 wants ``ClusterNode`` objects: we convert them.
  Without ``startup_nodes`` the URL's hosts are used, and without those celery-redbeat's
  default ``localhost:30001``.
* celery-redbeat's ``redbeat_redis_options={'cluster': True}`` with a ``redis://`` or
  ``rediss://`` URL: the URL's host is the start-up node (``localhost:6379`` when it names
  none, as redis-py's ``RedisCluster.from_url`` reads it).

Other keys of ``redbeat_redis_options`` (when that setting is given explicitly) go to the
client, as for plain Redis. The two celery-redbeat spellings also take the client options
(``max_connections``, ``socket_timeout``, ...) of ``broker_transport_options`` when
``redbeat_redis_options`` is unset, as celery-redbeat 2.4.2 does for a cluster.

redis-py's ``RedisCluster`` silently drops keyword arguments its node connections do not
take; RedBeat checks explicit ones first: an unknown key fails at start-up with
its name, a key that plain ``redis.Redis`` takes but ``RedisCluster`` drops is logged (and an
``ssl_*`` one, which would weaken TLS without a word, fails).
"""

from __future__ import annotations

import inspect
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import attrs
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import REDIS_ALLOWED_KEYS, ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.retry import Retry

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.masking import redacted_repr
from redbeat_core.urls import mask_url
from redbeat_redis import tls
from redbeat_redis.connection import TEXT_REPLIES, verification_sources
from redbeat_redis.settings import INTERNAL_OPTION_KEYS, RedisSettings

logger = logging.getLogger("celery.beat")

#: URL schemes that always mean Redis Cluster.
CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster", "redis-cluster")
#: Schemes that mean Redis Cluster when ``redbeat_redis_options['cluster']`` is true.
OPTION_SCHEMES: Final = ("redis", "rediss")
TLS_SCHEMES: Final = frozenset({"rediss+cluster", "rediss"})
DEFAULT_PORT: Final = 6379
#: celery-redbeat 2.4.2's start-up node for ``redis-cluster://`` without ``startup_nodes``.
CELERY_REDBEAT_DEFAULT_NODE: Final = ("localhost", 30001)
#: The start-up node of ``{'cluster': True}`` with a ``redis://`` URL that names no host.
CELERY_REDBEAT_OPTION_NODE: Final = ("localhost", DEFAULT_PORT)
#: celery-redbeat's spellings (``redis-cluster://``, ``{'cluster': True}`` on ``redis://``):
#: these forward options inherited from ``broker_transport_options``, as it did.
CELERY_REDBEAT_FORMS: Final = frozenset({"redis-cluster", *OPTION_SCHEMES})
STARTUP_NODES_SETTING: Final = "redbeat_redis_options['startup_nodes']"
OPTIONS_SETTING: Final = "redbeat_redis_options"

#: Where celery-redbeat kept the client; a client assigned there by the user is used as is.
APP_CLIENT_ATTRIBUTE: Final = "redbeat_redis"

_NOT_CLIENT_OPTIONS: Final = frozenset({"self", "kwargs", "host", "port", "startup_nodes", "url"})
#: Keyword arguments of ``RedisCluster`` itself, and those it forwards to its node clients.
_CLUSTER_OPTIONS: Final = (
    (frozenset(inspect.signature(RedisCluster.__init__).parameters) | frozenset(REDIS_ALLOWED_KEYS))
    - _NOT_CLIENT_OPTIONS
    - {"db", "connection_pool", "unix_socket_path", "nodes_flag"}
)
#: Keyword arguments plain ``redis.Redis`` takes (for the "dropped by RedisCluster" message).
_REDIS_OPTIONS: Final = frozenset(inspect.signature(redis.Redis.__init__).parameters)


def scheme_of(url: str) -> str:
    """The scheme, also of a URL ``urlsplit`` refuses (an unclosed IPv6 bracket)."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def uses_cluster(config: RedBeatConfig) -> bool:
    """Whether ``config`` asks for Redis Cluster: a cluster scheme, or celery-redbeat's
    ``redbeat_redis_options['cluster']`` with a ``redis://``/``rediss://`` URL."""
    scheme = scheme_of(config.url)
    if scheme in CLUSTER_SCHEMES:
        return True
    return scheme in OPTION_SCHEMES and bool(RedisSettings.of(config).options.get("cluster"))


@attrs.frozen
class ClusterTarget:
    """Where the cluster is and how to talk to it: what ``RedisCluster(...)`` is called with."""

    nodes: tuple[tuple[str, int], ...]
    #: Passwords and credential providers are masked in the repr.
    kwargs: Mapping[str, Any] = attrs.field(repr=redacted_repr)
    tls: bool

    def startup_nodes(self) -> list[ClusterNode]:
        return [ClusterNode(host, port) for host, port in self.nodes]  # type: ignore[no-untyped-call]

    def describe(self) -> str:
        """``h1:7000,h2:7001`` (no credentials)."""
        return ",".join(_format_node(host, port) for host, port in self.nodes)


def _format_node(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(value: Any, setting: str, shown: object) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if isinstance(value, bool) or not 0 < port < 65536:
        raise ConfigurationError(setting, shown, f"port {value!r} is not a number in 1-65535")
    return port


def _parse_host(item: str, setting: str, shown: object) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port``."""
    item = item.strip()
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ConfigurationError(setting, shown, f"cannot read the node {item!r}")
        port = _port(rest[1:], setting, shown) if rest else DEFAULT_PORT
    else:
        host, colon, port_text = item.rpartition(":")
        if not colon:
            host, port = item, DEFAULT_PORT
        else:
            port = _port(port_text, setting, shown)
    if not host:
        raise ConfigurationError(setting, shown, f"the node {item!r} has no host name")
    return unquote(host), port


def shown_url(url: str) -> str:
    """The URL for messages, its secrets masked (:func:`~redbeat_core.urls.mask_url` also
    masks URLs that do not parse)."""
    return mask_url(url)


def _url_parts(config: RedBeatConfig) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Start-up nodes and client options (credentials, typed query options) of the URL."""
    shown = shown_url(config.url)
    setting = config.url_setting
    try:
        parts = urlsplit(config.url)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
        raise ConfigurationError(setting, shown, f"cannot read the node list: {exc}") from exc
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if not at:
        userinfo, hostlist = "", parts.netloc
    nodes = [_parse_host(item, setting, shown) for item in hostlist.split(",") if item.strip()]
    if hostlist and len(nodes) != len(hostlist.split(",")):
        raise ConfigurationError(setting, shown, "an empty node in the list of hosts")
    if parts.path not in ("", "/", "/0"):
        raise ConfigurationError(
            setting,
            shown,
            f"Redis Cluster has only database 0; remove {parts.path!r} from the URL",
        )
    options: dict[str, Any] = {}
    if userinfo:
        username, colon, password = userinfo.partition(":")
        if username:
            options["username"] = unquote(username)
        if colon:
            options["password"] = unquote(password)
    if parts.query:
        try:
            query = parse_url(f"redis://localhost/?{parts.query}")  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ConfigurationError(setting, shown, f"bad query option: {exc}") from exc
        query.pop("host", None)
        if query.pop("db", 0) != 0:
            raise ConfigurationError(setting, shown, "Redis Cluster has only database 0 (db=0)")
        options.update(query)
    return nodes, options


def _startup_nodes(value: Any) -> list[tuple[str, int]]:
    """celery-redbeat's ``startup_nodes``: dicts (port maybe a string), ``ClusterNode``s,
    ``(host, port)`` pairs or ``"host:port"`` strings."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ConfigurationError(
            STARTUP_NODES_SETTING,
            value,
            'a list of nodes such as [{"host": "10.0.0.1", "port": 7000}]',
        )
    nodes = []
    for item in value:
        if isinstance(item, ClusterNode):
            nodes.append((str(item.host), _port(item.port, STARTUP_NODES_SETTING, value)))
        elif isinstance(item, Mapping):
            if "host" not in item or not item["host"]:
                raise ConfigurationError(
                    STARTUP_NODES_SETTING, value, f"the node {item!r} has no 'host'"
                )
            port = _port(item.get("port", DEFAULT_PORT), STARTUP_NODES_SETTING, value)
            nodes.append((str(item["host"]), port))
        elif isinstance(item, str):
            nodes.append(_parse_host(item, STARTUP_NODES_SETTING, value))
        elif isinstance(item, Sequence) and len(item) == 2:
            nodes.append((str(item[0]), _port(item[1], STARTUP_NODES_SETTING, value)))
        else:
            raise ConfigurationError(
                STARTUP_NODES_SETTING,
                value,
                f"cannot read the node {item!r}: give a dict with 'host' and 'port', "
                "a ClusterNode, a (host, port) pair or a 'host:port' string",
            )
    if not nodes:
        raise ConfigurationError(STARTUP_NODES_SETTING, value, "at least one node")
    return nodes


def _check_options(options: Mapping[str, Any], setting: str = OPTIONS_SETTING) -> dict[str, Any]:
    """Refuse what ``RedisCluster`` would silently drop or reject."""
    checked = dict(options)
    if "db" in checked and checked.pop("db") not in (0, "0"):
        raise ConfigurationError(
            f"{setting}['db']", options["db"], "Redis Cluster has only database 0"
        )
    unknown = sorted(k for k in checked if k not in _CLUSTER_OPTIONS and k not in _REDIS_OPTIONS)
    if unknown:
        # Names only: the value of a misspelled "pasword" is a password all the same.
        raise ConfigurationError(
            setting,
            unknown,
            f"unknown option(s) {', '.join(unknown)} for the Redis Cluster client; accepted: "
            + ", ".join(sorted(_CLUSTER_OPTIONS)),
        )
    dropped = sorted(k for k in checked if k not in _CLUSTER_OPTIONS)
    unsafe = [k for k in dropped if k.startswith("ssl")]
    if unsafe:
        raise ConfigurationError(
            setting,
            unsafe,
            "redis-py's RedisCluster does not pass these TLS options to its connections, so "
            "they would have no effect; remove them (supported TLS options: "
            + ", ".join(sorted(k for k in _CLUSTER_OPTIONS if k.startswith("ssl")))
            + ")",
        )
    for key in dropped:
        logger.warning(
            "beat: %s[%r] is ignored: redis-py's RedisCluster does not pass it to its connections",
            setting,
            key,
        )
        checked.pop(key)
    return checked


def _inherited_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """celery-redbeat's cluster forms pass the options inherited from
    ``broker_transport_options`` to ``RedisCluster`` (its other forms do not), which keeps the
    client's (``max_connections``, ``socket_timeout``, ...) and drops the broker's own
    (``visibility_timeout``, ...). The same here, without relying on redis-py's silent drop."""
    kept = {k: v for k, v in options.items() if k in _CLUSTER_OPTIONS}
    dropped = sorted(k for k in options if k not in kept and k not in INTERNAL_OPTION_KEYS)
    if dropped:
        logger.debug("beat: broker_transport_options not for the cluster client: %s", dropped)
    return kept


def cluster_target(config: RedBeatConfig) -> ClusterTarget:
    """Start-up nodes and ``RedisCluster`` keyword arguments for ``config``. No I/O."""
    scheme = scheme_of(config.url)
    if not uses_cluster(config):
        raise ConfigurationError(
            config.url_setting,
            shown_url(config.url),
            "not a Redis Cluster URL: use redis+cluster://h1:7000,h2:7001 or rediss+cluster://",
        )
    url_nodes, url_options = _url_parts(config)
    redis_settings = RedisSettings.of(config)
    options = redis_settings.options
    # celery-redbeat: `options.get('startup_nodes') or [default]`, so an empty list is absent.
    if scheme == "redis-cluster" and options.get("startup_nodes"):
        nodes = _startup_nodes(options["startup_nodes"])
    elif url_nodes:
        nodes = url_nodes
    elif scheme == "redis-cluster":
        nodes = [CELERY_REDBEAT_DEFAULT_NODE]
    elif scheme in OPTION_SCHEMES:
        nodes = [CELERY_REDBEAT_OPTION_NODE]  # redis-py's from_url: no host is localhost
    else:
        raise ConfigurationError(
            config.url_setting,
            shown_url(config.url),
            "name at least one node: redis+cluster://host:port[,host:port...]",
        )
    if redis_settings.options_explicit:
        client_options = _check_options(redis_settings.client_options)
    elif scheme in CELERY_REDBEAT_FORMS:
        client_options = _inherited_options(options)
    else:
        client_options = {}
    tls = scheme in TLS_SCHEMES or bool(client_options.get("ssl") or url_options.get("ssl"))
    kwargs: dict[str, Any] = dict(TEXT_REPLIES)
    if tls:
        kwargs["ssl"] = True
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        if isinstance(redis_settings.use_ssl, Mapping):
            kwargs.update(_check_options(redis_settings.use_ssl, "redbeat_redis_use_ssl"))
    kwargs.update(client_options)
    kwargs.update(url_options)  # as in redis-py's from_url: the URL wins
    return ClusterTarget(nodes=tuple(nodes), kwargs=kwargs, tls=tls)


#: Attempts after the first that redis-py's cluster client makes inside one call when a node
#: fails (it refreshes its slot map before each). redis-py 8 defaults to 10 with 5 s socket
#: timeouts: a primary that stops answering (rather than refusing) could hold one tick for a
#: minute. RedBeat's own ``retry_period`` and the next tick retry beyond that.
CLUSTER_CALL_RETRIES: Final = 3


def default_retry() -> Retry:
    """The cluster client's retry when the user gives neither ``retry`` nor
    ``cluster_error_retry_attempts``."""
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=1.0), CLUSTER_CALL_RETRIES)


#: redis-py runs MULTI/EXEC pipelines on RedisCluster since 6.1.0 (6.1.0 itself broke TLS
#: hostname checks; 6.1.1 and 6.2.0 fixed it). ``migrate.copy_schedule`` writes with one.
MIN_REDIS_PY: Final = (6, 2)


def check_redis_py(version: str = redis.__version__) -> None:
    """Refuse a redis-py too old to run transactions on a cluster, with what to install."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return  # a development build: let it try
    if found < MIN_REDIS_PY:
        wanted = ".".join(map(str, MIN_REDIS_PY))
        raise ConfigurationError(
            "redbeat_redis_url",
            f"redis-py {version}",
            f"Redis Cluster needs redis-py >= {wanted} (transactions on RedisCluster): "
            f"pip install 'redis>={wanted}'",
        )


def build_client(config: RedBeatConfig) -> RedisCluster:
    """A connected ``RedisCluster`` (redis-py reads the slot map from a start-up node here).

    A node list nobody answers raises ``redis.exceptions.RedisClusterException``; the caller
    turns it into :class:`~redbeat_core.exceptions.StoreUnavailableError`.
    """
    target = cluster_target(config)
    check_redis_py()
    kwargs = dict(target.kwargs)
    if "retry" not in kwargs and "cluster_error_retry_attempts" not in kwargs:
        kwargs["retry"] = default_retry()
    if target.tls:  # warned before connecting: the client reads the slot map at once
        tls.warn_if_unverified(shown_url(config.url), verification_sources(config))
    # Looked up now, not at import: tests patch redis.cluster.RedisCluster (and its
    # from_url) to intercept the client, as they do with celery-redbeat.
    cluster_class = redis.cluster.RedisCluster
    try:
        if scheme_of(config.url) in OPTION_SCHEMES:  # celery-redbeat: RedisCluster.from_url
            host, port = target.nodes[0]
            scheme = "rediss" if target.tls else "redis"
            url = f"{scheme}://{_format_node(host, port)}"
            client = cluster_class.from_url(url, **kwargs)
        else:
            client = cluster_class(startup_nodes=target.startup_nodes(), **kwargs)
    except TypeError as exc:
        raise ConfigurationError(
            config.url_setting,
            shown_url(config.url),
            f"cannot build a Redis Cluster client from it and redbeat_redis_options: {exc}",
        ) from exc
    return client
