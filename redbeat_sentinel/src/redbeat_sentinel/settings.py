"""Reading the Sentinel settings: the ``redis+sentinel://`` URL forms and celery-redbeat's form.

Three schemes, two ways to say where the sentinels are:

``redis+sentinel://[user:password@]host1:26379,host2:26379/<service>?db=0``
    Everything in the URL. ``user:password`` (an ACL user, or just ``:password``) authenticates
    to the master, not to the sentinels. The query takes ``db`` and redis-py's URL options
    (``socket_timeout``, ``socket_connect_timeout``, ``health_check_interval``, ...).
    ``redbeat_redis_options`` (when set explicitly) go to the master's client as they do for
    ``redis://``; its ``sentinel_kwargs`` go to the sentinel connections.

``rediss+sentinel://...``
    The same, with TLS to the master (and replicas). The certificate is verified unless
    ``redbeat_redis_use_ssl`` (a dict of ``ssl_*`` options) says otherwise, as for ``rediss://``.
    The sentinels themselves speak TLS only if ``sentinel_kwargs`` says so (``{"ssl": True}``).

``redis-sentinel://`` (celery-redbeat 2.4.2)
    The URL's host part is ignored; ``redbeat_redis_options`` says everything: ``sentinels``
    (list of ``(host, port)``), ``service_name`` (default ``'master'``), ``sentinel_kwargs``,
    ``password``, ``username``, ``db``, ``socket_timeout``, ``credential_provider``,
    ``retry_period``, and TLS to the master when ``redbeat_redis_use_ssl`` is a dict. Any other
    key is ignored, exactly as celery-redbeat ignores it. These options are read even when they
    are inherited from ``broker_transport_options``, as celery-redbeat reads them.

Everything is checked here, without I/O; a missing or malformed piece raises
:class:`~redbeat_core.exceptions.ConfigurationError` naming the setting and the accepted form.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
from redis.connection import URL_QUERY_ARGUMENT_PARSERS

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.masking import MASK, is_secret_name, redacted_repr
from redbeat_core.urls import mask_url, url_scheme
from redbeat_redis.connection import TEXT_REPLIES
from redbeat_redis.settings import RedisSettings

logger = logging.getLogger("celery.beat")

URL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
CELERY_REDBEAT_SCHEME: Final = "redis-sentinel"
SCHEMES: Final = (*URL_SCHEMES, CELERY_REDBEAT_SCHEME)

DEFAULT_SENTINEL_PORT: Final = 26379
#: celery-redbeat's default ``service_name`` for ``redis-sentinel://``.
CELERY_REDBEAT_DEFAULT_SERVICE: Final = "master"

URL_FORM: Final = (
    "redis+sentinel://[user:password@]host1:26379,host2:26379/<service>?db=0 "
    "(rediss+sentinel:// for TLS to the master)"
)
CELERY_REDBEAT_FORM: Final = (
    "redbeat_redis_url='redis-sentinel://' with redbeat_redis_options="
    "{'sentinels': [('host1', 26379), ('host2', 26379)], 'service_name': 'mymaster'}"
)

#: The ``redbeat_redis_options`` keys celery-redbeat 2.4.2 reads for ``redis-sentinel://``.
CELERY_REDBEAT_KEYS: Final = frozenset(
    {
        "sentinels",
        "service_name",
        "sentinel_kwargs",
        "password",
        "username",
        "db",
        "socket_timeout",
        "retry_period",
        "credential_provider",
    }
)

Form = Literal["url", "celery-redbeat"]


@attrs.frozen
class SentinelSettings:
    """What the Sentinel client is built from, checked.

    ``connection_kwargs`` go to ``redis.sentinel.Sentinel(**connection_kwargs)``: they apply to
    the master (and replicas) that the sentinels name. ``sentinel_kwargs`` apply to the sentinel
    connections; None lets redis-py copy the ``socket_*`` options of ``connection_kwargs``.
    """

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int
    #: Passwords and credential providers are masked in the repr (as in ``sentinel_kwargs``).
    connection_kwargs: Mapping[str, Any] = attrs.field(repr=redacted_repr)
    sentinel_kwargs: Mapping[str, Any] | None = attrs.field(repr=redacted_repr)
    tls: bool
    form: Form

    def describe(self) -> str:
        """One line for banners and errors (no credentials)."""
        hosts = ",".join(_format_host(h, p) for h, p in self.sentinels)
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        return f"{scheme}://{hosts}/{self.service_name}?db={self.db}"


def _format_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------------- entry point


def read_settings(config: RedBeatConfig, *, warn: bool = True) -> SentinelSettings:
    """The Sentinel settings of ``config``, for any of the three schemes. With ``warn``, options
    that are ignored are logged (once per start-up: the backend reads them again quietly)."""
    redis = RedisSettings.of(config)
    scheme = url_scheme(config.url)
    if scheme not in SCHEMES:
        raise ConfigurationError(
            config.url_setting,
            mask_url(config.url),
            f"the Sentinel backend handles {', '.join(s + '://' for s in SCHEMES)} only",
        )
    if redis.options.get("cluster"):
        raise ConfigurationError(
            "redbeat_redis_options['cluster']",
            redis.options.get("cluster"),
            "a Sentinel URL and cluster mode exclude each other: drop 'cluster' for Sentinel, "
            "or use a redis+cluster:// URL (the extra `redbeat[cluster]`) for Redis Cluster",
        )
    if scheme == CELERY_REDBEAT_SCHEME:
        # celery-redbeat reads these keys even from broker_transport_options.
        sentinel_kwargs = _sentinel_kwargs(redis.options)
        return _celery_redbeat_form(config, sentinel_kwargs, warn=warn)
    # Like redis://: options inherited from broker_transport_options belong to the broker.
    explicit = redis.options if redis.options_explicit else {}
    return _url_form(config, _sentinel_kwargs(explicit), tls=scheme == "rediss+sentinel", warn=warn)


# --------------------------------------------------------------------------------- pieces


def _sentinel_kwargs(options: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = options.get("sentinel_kwargs")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            "redbeat_redis_options['sentinel_kwargs']",
            f"<{type(value).__name__}>",  # its type, not a value that may hold a password
            "a dict of connection options for the sentinels, such as "
            "{'password': '...', 'socket_timeout': 1.0}",
        )
    return dict(value)


def _port(value: int | str, *, setting: str, shown: object) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise ConfigurationError(setting, shown, f"a port between 1 and 65535, not {port}")
    return port


def _check_sentinels(value: Any, setting: str) -> tuple[tuple[str, int], ...]:
    """celery-redbeat's ``sentinels``: a non-empty list of ``(host, port)`` pairs."""
    accepted = f"a non-empty list of (host, port) pairs; the whole form is {CELERY_REDBEAT_FORM}"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ConfigurationError(setting, value, accepted)
    checked = []
    for item in value:
        if isinstance(item, str | bytes) or not isinstance(item, Sequence) or len(item) != 2:
            raise ConfigurationError(setting, value, accepted)
        host, port = item
        if not isinstance(host, str) or not host:
            raise ConfigurationError(setting, value, accepted)
        if isinstance(port, bool):
            raise ConfigurationError(setting, value, accepted)
        try:
            number = int(port)
        except (TypeError, ValueError):
            raise ConfigurationError(setting, value, accepted) from None
        checked.append((host, _port(number, setting=setting, shown=value)))
    return tuple(checked)


def _parse_hosts(hostlist: str, config: RedBeatConfig) -> tuple[tuple[str, int], ...]:
    """``h1:26379,h2,[::1]:26380`` -> pairs; a host without a port gets 26379."""
    shown = mask_url(config.url)
    accepted = f"a comma-separated list of sentinels host:port, as in {URL_FORM}"
    if not hostlist:
        raise ConfigurationError(config.url_setting, shown, f"no sentinels given: {accepted}")
    hosts = []
    for raw in hostlist.split(","):
        item = raw.strip()
        if item.startswith("["):  # [IPv6]:port
            host, bracket, rest = item[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ConfigurationError(config.url_setting, shown, accepted)
            port_text = rest[1:]
        elif item.count(":") > 1:
            raise ConfigurationError(
                config.url_setting, shown, f"{accepted} (write IPv6 addresses as [addr]:port)"
            )
        else:
            host, _, port_text = item.partition(":")
        host = unquote(host)
        if not host:
            raise ConfigurationError(
                config.url_setting, shown, f"an empty sentinel host: {accepted}"
            )
        if port_text and not port_text.isdigit():
            raise ConfigurationError(
                config.url_setting,
                shown,
                f"sentinel port {port_text!r} is not a number: {accepted}",
            )
        port = (
            _port(port_text, setting=config.url_setting, shown=shown)
            if port_text
            else DEFAULT_SENTINEL_PORT
        )
        hosts.append((host, port))
    return tuple(hosts)


def _query(query: str, config: RedBeatConfig) -> dict[str, Any]:
    """The URL's query, parsed the way redis-py parses ``redis://`` URL options."""
    kwargs: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parser = URL_QUERY_ARGUMENT_PARSERS.get(name)
        try:
            kwargs[name] = parser(value) if callable(parser) else value
        except (TypeError, ValueError):
            shown = MASK if is_secret_name(name) else repr(value)
            raise ConfigurationError(
                config.url_setting,
                mask_url(config.url),
                f"invalid value {shown} for {name!r} in the URL's query",
            ) from None
    return kwargs


def _check_db(value: Any, setting: str) -> int:
    """A database number; a string of digits is accepted (redis-py sends it to SELECT)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(setting, value, "a database number >= 0")
    return value


def _tls_kwargs(config: RedBeatConfig) -> dict[str, Any]:
    """TLS to the data nodes: verified by default, ``redbeat_redis_use_ssl`` (a dict) adjusts."""
    kwargs: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    redis = RedisSettings.of(config)
    if isinstance(redis.use_ssl, dict):
        kwargs.update(redis.use_ssl)
    return kwargs


def _url_form(
    config: RedBeatConfig, sentinel_kwargs: Mapping[str, Any] | None, *, tls: bool, warn: bool
) -> SentinelSettings:
    shown = mask_url(config.url)
    parts = urlsplit(config.url)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    sentinels = _parse_hosts(hostlist, config)

    service = unquote(parts.path.strip("/"))
    if not service:
        raise ConfigurationError(
            config.url_setting, shown, f"no service (master) name in the path: {URL_FORM}"
        )
    if "/" in service:
        raise ConfigurationError(
            config.url_setting,
            shown,
            f"the path is the service name only; give the database as ?db=N: {URL_FORM}",
        )

    query = _query(parts.query, config)
    redis = RedisSettings.of(config)
    options = redis.options
    if warn and redis.options_explicit:
        ignored = sorted({"sentinels", "service_name"} & set(options))
        if ignored:
            logger.warning(
                "beat: redbeat_redis_options %s are ignored: the %s URL names the sentinels "
                "and the service itself",
                ", ".join(ignored),
                url_scheme(config.url),
            )

    kwargs: dict[str, Any] = dict(TEXT_REPLIES)
    if tls:
        kwargs.update(_tls_kwargs(config))
    kwargs.update(redis.client_options)  # explicit options only, minus RedBeat's own keys
    kwargs.update(query)  # the URL wins, as redis-py's from_url does
    if at:
        username, colon, password = userinfo.partition(":")
        if username:
            kwargs["username"] = unquote(username)
        if colon and password:
            kwargs["password"] = unquote(password)
    db = _check_db(kwargs.pop("db", 0), f"{config.url_setting} (db)")
    return SentinelSettings(
        sentinels=sentinels,
        service_name=service,
        db=db,
        connection_kwargs={**kwargs, "db": db},
        sentinel_kwargs=sentinel_kwargs,
        tls=tls,
        form="url",
    )


def _celery_redbeat_form(
    config: RedBeatConfig, sentinel_kwargs: Mapping[str, Any] | None, *, warn: bool
) -> SentinelSettings:
    redis = RedisSettings.of(config)
    options = redis.options
    if "sentinels" not in options:
        raise ConfigurationError(
            "redbeat_redis_options['sentinels']",
            None,
            "a redis-sentinel:// URL takes its sentinels from redbeat_redis_options['sentinels'] "
            f"(as in celery-redbeat): {CELERY_REDBEAT_FORM}; or put them in the URL: {URL_FORM}",
        )
    sentinels = _check_sentinels(options["sentinels"], "redbeat_redis_options['sentinels']")
    service = options.get("service_name", CELERY_REDBEAT_DEFAULT_SERVICE)
    if not isinstance(service, str) or not service:
        raise ConfigurationError(
            "redbeat_redis_options['service_name']",
            service,
            "the name the sentinels monitor the master under (sentinel monitor <name> ...); "
            f"celery-redbeat's default is {CELERY_REDBEAT_DEFAULT_SERVICE!r}",
        )
    db = _check_db(options.get("db", 0), "redbeat_redis_options['db']")

    # Exactly the arguments celery-redbeat 2.4.2 gives redis.sentinel.Sentinel (strict
    # decoding: the beat's claims are read undecoded, so a stored byte that is not UTF-8
    # stops only a listing that meets it).
    kwargs: dict[str, Any] = {
        "socket_timeout": options.get("socket_timeout"),
        "password": options.get("password"),
        "db": db,
        "decode_responses": True,
        "credential_provider": options.get("credential_provider"),
    }
    if isinstance(redis.use_ssl, dict):
        kwargs.update(_tls_kwargs(config))
    elif redis.use_ssl and warn:
        logger.warning(
            "beat: redbeat_redis_use_ssl=%r does not turn TLS on for redis-sentinel:// (as in "
            "celery-redbeat, only a dict of ssl options does); use a rediss+sentinel:// URL or "
            "a dict such as {'ssl_cert_reqs': 'required'}",
            redis.use_ssl,
        )
    if options.get("username") is not None:
        kwargs["username"] = options["username"]

    if warn and redis.options_explicit:
        ignored = sorted(set(options) - CELERY_REDBEAT_KEYS)
        if ignored:
            logger.warning(
                "beat: redbeat_redis_options %s are ignored by redis-sentinel:// (as in "
                "celery-redbeat 2.4.2); use a redis+sentinel:// URL to pass client options",
                ", ".join(ignored),
            )
    return SentinelSettings(
        sentinels=sentinels,
        service_name=service,
        db=db,
        connection_kwargs=kwargs,
        sentinel_kwargs=sentinel_kwargs,
        tls=bool(kwargs.get("ssl")),
        form="celery-redbeat",
    )
