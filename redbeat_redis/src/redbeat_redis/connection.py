"""Building the Redis client for ``redis://``, ``rediss://`` and ``unix://`` URLs.

Options follow celery-redbeat 2.4.2: keys of ``redbeat_redis_options`` other than RedBeat's own
go to the client (``password``, ``username``, ``credential_provider``, ``socket_timeout``,
``health_check_interval``, ...), but only when that setting was given explicitly (options
inherited from ``broker_transport_options`` belong to the broker). ``rediss://`` requires a
verified certificate unless ``redbeat_redis_use_ssl`` says otherwise, and a setting that turns
verification off is warned about (:mod:`redbeat_redis.tls`).
"""

from __future__ import annotations

import ssl
from typing import Any, Final

import redis

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.urls import mask_url, url_scheme
from redbeat_redis import tls
from redbeat_redis.settings import OPTIONS_SETTING, RedisSettings

#: Where celery-redbeat kept the client; a client assigned there by the user is used as is.
APP_CLIENT_ATTRIBUTE: Final = "redbeat_redis"
#: How RedBeat's clients read replies: as text, as celery-redbeat's do, but a byte that is not
#: UTF-8 (another program wrote it) is kept as a lone surrogate rather than failing the whole
#: reply, so one such key cannot stop a listing; the store writes it back as the same bytes.
TEXT_REPLIES: Final = {"decode_responses": True, "encoding_errors": "surrogateescape"}


def client_kwargs(config: RedBeatConfig) -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis.from_url`` derived from the settings."""
    redis_settings = RedisSettings.of(config)
    options = redis_settings.client_options
    if redis_settings.options.get("cluster"):
        raise ConfigurationError(
            f"{OPTIONS_SETTING}['cluster']",
            True,
            "Redis Cluster needs the extra `redbeat[cluster]` (which then handles this form) or a "
            "redis+cluster:// URL",
        )
    kwargs: dict[str, Any] = dict(TEXT_REPLIES)
    if url_scheme(config.url) == "rediss":
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        if isinstance(redis_settings.use_ssl, dict):
            kwargs.update(redis_settings.use_ssl)
    kwargs.update(options)
    return kwargs


def unwrap(client: Any) -> Any:
    """The real client behind celery-redbeat's ``RetryingConnection`` proxy, if any."""
    return getattr(client, "wrapped_connection", None) or client


def client_address(client: Any) -> str:
    """Where a redis-py client connects (``host:port/db`` or the socket path), for banners:
    the URL does not say it when the user assigned the client."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    if not isinstance(kwargs, dict):
        return type(client).__name__
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def client_for(config: RedBeatConfig, app: Any) -> Any:
    """The app's Redis client: the one assigned to ``app.redbeat_redis``, or a new one (which
    is then stored there, as celery-redbeat did, for code that reads it)."""
    assigned = getattr(app, APP_CLIENT_ATTRIBUTE, None) if app is not None else None
    if assigned is not None:
        return unwrap(assigned)
    try:
        client = redis.Redis.from_url(config.url, **client_kwargs(config))
        # redis-py checks connection arguments only when it first connects; build one
        # connection object now (no I/O) so a misspelled option fails at start-up.
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)
    except (TypeError, ValueError, redis.exceptions.RedisError) as exc:
        raise ConfigurationError(
            config.url_setting,
            mask_url(config.url),
            f"cannot build a Redis client from it and redbeat_redis_options: {exc}",
        ) from exc
    if url_scheme(config.url) == "rediss":
        tls.warn_if_unverified(mask_url(config.url), verification_sources(config))
    if app is not None:
        setattr(app, APP_CLIENT_ATTRIBUTE, client)
    return client


def verification_sources(config: RedBeatConfig, *, options: bool = True) -> list[tls.Source]:
    """Where the TLS options of ``config`` come from, in the order the backends apply them
    (a later one wins): ``redbeat_redis_use_ssl`` (or the ``broker_use_ssl`` it inherits),
    ``redbeat_redis_options`` when they go to the client (``options``), the URL's query."""
    redis_settings = RedisSettings.of(config)
    sources = []
    if isinstance(redis_settings.use_ssl, dict):
        sources.append(tls.use_ssl_source(redis_settings.use_ssl, redis_settings.use_ssl_source))
    if options and redis_settings.client_options:
        sources.append(tls.options_source(redis_settings.client_options))
    sources.append(tls.query_source(config.url, config.url_setting))
    return sources
