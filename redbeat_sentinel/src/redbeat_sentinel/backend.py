"""The Sentinel backend: the Redis store and lock on a client that follows the master.

Only the client differs from plain Redis: ``Sentinel(...).master_for(service)`` returns a
redis-py client whose ``SentinelConnectionPool`` asks the sentinels for the master's address
whenever it opens a connection. After a failover:

* connections to the dead master fail with ``ConnectionError`` and a master that was demoted to
  a replica answers ``READONLY``, which redis-py's ``SentinelManagedConnection`` turns into a
  ``ConnectionError`` after dropping the connection; while no sentinel names a usable master,
  ``MasterNotFoundError`` (also a ``ConnectionError``). The Redis backend translates all of
  them into ``StoreUnavailableError``: the beat keeps its loop alive and retries on its poll
  interval;
* the next connection goes to the master the sentinels name, and the tick's scripts check the
  lock token there: the beat keeps its lock if the key was replicated before the failover, and
  re-acquires it otherwise (with a higher fencing epoch).

celery-redbeat compatibility: a client assigned to ``app.redbeat_redis`` is used as is, a
``redis.sentinel.Sentinel`` assigned to ``app.redbeat_sentinel`` is asked for the master, and
both attributes are set to what this backend builds.
"""

from __future__ import annotations

from typing import Any, Final

from redis.backoff import NoBackoff
from redis.exceptions import DataError
from redis.retry import Retry
from redis.sentinel import Sentinel

from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import ConfigurationError
from redbeat_core.urls import mask_url
from redbeat_redis import tls
from redbeat_redis.backend import RedisBackend
from redbeat_redis.connection import APP_CLIENT_ATTRIBUTE, unwrap, verification_sources
from redbeat_sentinel.settings import SentinelSettings, read_settings

#: Where celery-redbeat kept its ``Sentinel`` object.
APP_SENTINEL_ATTRIBUTE: Final = "redbeat_sentinel"


def check_config(config: RedBeatConfig) -> RedBeatConfig:
    """The registry's ``adjust_config`` hook: check the Sentinel settings at start-up (no I/O)
    so that a bad URL or option fails before anything else happens. The config is unchanged."""
    read_settings(config)
    return config


def sentinel_connection_kwargs(settings: SentinelSettings) -> dict[str, Any]:
    """Connection options for the sentinels themselves.

    The user's ``sentinel_kwargs`` or, without them, the ``socket_*`` options of the master's
    connection (what redis-py does), plus one default: a sentinel that does not answer is not
    retried, because ``Sentinel`` asks the next one anyway and the beat asks again on its next
    tick. Recent redis-py otherwise retries each sentinel with backoff before asking the next
    one (8.1: 10 retries, up to 1 s apart): a dead sentinel first in the list then costs about
    4 s, measured, during a failover (redis-py < 6, celery-redbeat's era, did not retry). A
    ``retry`` in ``sentinel_kwargs`` wins.
    """
    if settings.sentinel_kwargs is not None:
        kwargs = dict(settings.sentinel_kwargs)
    else:
        kwargs = {k: v for k, v in settings.connection_kwargs.items() if k.startswith("socket_")}
    kwargs.setdefault("retry", Retry(NoBackoff(), 0))
    return kwargs


def build_sentinel(settings: SentinelSettings, config: RedBeatConfig) -> Sentinel:
    """A ``redis.sentinel.Sentinel`` for the settings (no I/O: redis-py connects lazily)."""
    try:
        return Sentinel(  # type: ignore[no-untyped-call]
            list(settings.sentinels),
            sentinel_kwargs=sentinel_connection_kwargs(settings),
            **settings.connection_kwargs,
        )
    except (TypeError, ValueError, DataError) as exc:
        raise _client_error(config, settings, exc) from exc


def _client_error(
    config: RedBeatConfig, settings: SentinelSettings, exc: Exception
) -> ConfigurationError:
    where = (
        "redbeat_redis_options"
        if settings.form == "celery-redbeat"
        else "the URL's query and redbeat_redis_options"
    )
    return ConfigurationError(
        config.url_setting,
        mask_url(config.url),
        f"cannot build a Sentinel client from it and {where}: {exc}",
    )


def master_client(sentinel: Sentinel, settings: SentinelSettings, config: RedBeatConfig) -> Any:
    """The client for the service's master, checked: redis-py checks connection arguments only
    when it first connects, so one connection object is built now (no I/O) and a misspelled
    option fails at start-up."""
    try:
        client = sentinel.master_for(settings.service_name, db=settings.db)  # type: ignore[no-untyped-call]
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)
    except (TypeError, ValueError, DataError) as exc:
        raise _client_error(config, settings, exc) from exc
    return client


def client_for(config: RedBeatConfig, app: Any) -> Any:
    """The app's client for the Sentinel-monitored master (see the module's docstring)."""
    assigned = getattr(app, APP_CLIENT_ATTRIBUTE, None) if app is not None else None
    if assigned is not None:
        return unwrap(assigned)
    settings = read_settings(config, warn=False)  # check_config warned at start-up
    sentinel = getattr(app, APP_SENTINEL_ATTRIBUTE, None) if app is not None else None
    if not isinstance(sentinel, Sentinel):
        sentinel = build_sentinel(settings, config)
    client = master_client(sentinel, settings, config)
    warn_if_unverified(settings, config)
    if app is not None:
        setattr(app, APP_SENTINEL_ATTRIBUTE, sentinel)
        setattr(app, APP_CLIENT_ATTRIBUTE, client)
    return client


def warn_if_unverified(settings: SentinelSettings, config: RedBeatConfig) -> None:
    """Warn (:mod:`redbeat_redis.tls`) when TLS to the master, or to the sentinels, does not
    verify certificates."""
    shown = mask_url(config.url)
    if settings.tls:
        # celery-redbeat's form forwards no other option than those it names.
        sources = verification_sources(config, options=settings.form == "url")
        tls.warn_if_unverified(shown, sources, what="RedBeat's storage (the master)")
    sentinel_kwargs = settings.sentinel_kwargs or {}
    if sentinel_kwargs.get("ssl"):
        setting = "redbeat_redis_options['sentinel_kwargs']"
        sources = [tls.options_source(sentinel_kwargs, setting)]
        tls.warn_if_unverified(shown, sources, what="the sentinels")


#: The backend for ``redis+sentinel://``, ``rediss+sentinel://`` and ``redis-sentinel://``: the
#: Redis store and lock on the client ``client_for`` builds (the Sentinel connector).
create = RedisBackend.factory(client_for)
