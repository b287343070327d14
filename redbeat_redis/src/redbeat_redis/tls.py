"""Certificate verification for ``rediss://`` and its Sentinel and Cluster forms: on by
default, and never turned off without a warning.

Verification can be turned off from places a user does not look at when setting up RedBeat:
``redbeat_redis_use_ssl`` falls back to Celery's ``broker_use_ssl`` (as in celery-redbeat),
which many apps set to ``{'ssl_cert_reqs': ssl.CERT_NONE}`` for a broker with a self-signed
certificate; a URL may end in ``?ssl_cert_reqs=none``; ``redbeat_redis_options`` may carry
``ssl_cert_reqs``. Whoever can then sit on the network path can pose as the server and read
or rewrite the schedule, that is, run tasks. So when the value that wins says "none", the
backend logs one warning while it builds its client (once per start-up), naming where the
value came from and how to keep verification.

Celery's spellings (``'CERT_NONE'``, ``'CERT_REQUIRED'``, any case), which Celery's own Redis
result backend accepts but redis-py refuses, are turned into :mod:`ssl` constants in the
settings that hold them (:func:`normalized`).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl

import attrs

from redbeat_core import notices

logger = logging.getLogger("celery.beat")

OPTION: Final = "ssl_cert_reqs"
_CONSTANTS: Final = {
    "none": ssl.CERT_NONE,
    "cert_none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "cert_optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
    "cert_required": ssl.CERT_REQUIRED,
}


def normalized(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``options`` whose ``ssl_cert_reqs``, when a string Celery accepts
    (``'CERT_NONE'``, ``'none'``, any case), is the :mod:`ssl` constant redis-py takes."""
    copy = dict(options)
    value = copy.get(OPTION)
    if isinstance(value, str) and value.lower() in _CONSTANTS:
        copy[OPTION] = _CONSTANTS[value.lower()]
    return copy


def verification_off(value: Any) -> bool:
    """Whether an ``ssl_cert_reqs`` value turns certificate verification off (redis-py reads
    None as ``CERT_NONE`` too)."""
    if isinstance(value, str):
        return value.lower() in ("none", "cert_none")
    return value is None or value == ssl.CERT_NONE


@attrs.frozen
class Source:
    """A place TLS options come from, as the warning names it."""

    #: Where, in the user's words: ``broker_use_ssl``, ``the URL's query``...
    where: str
    options: Mapping[str, Any]
    #: How to keep verification when this place turned it off.
    fix: str


#: The advice that ends every fix: give the CA, do not switch verification off.
_CA = "{'ssl_cert_reqs': ssl.CERT_REQUIRED, 'ssl_ca_certs': '/path/to/ca.pem'}"


def use_ssl_source(options: Mapping[str, Any], setting: str) -> Source:
    """``redbeat_redis_use_ssl``, or ``broker_use_ssl`` when it was inherited (``setting`` is
    the key the value was read from)."""
    if setting == "broker_use_ssl":
        return Source(
            "broker_use_ssl (inherited: redbeat_redis_use_ssl is not set)",
            options,
            f"set redbeat_redis_use_ssl = {_CA} (RedBeat then stops inheriting broker_use_ssl)",
        )
    return Source(setting, options, f"set {setting} = {_CA}")


def options_source(options: Mapping[str, Any], setting: str = "redbeat_redis_options") -> Source:
    return Source(
        setting,
        options,
        f"remove ssl_cert_reqs from {setting}, and give the CA with redbeat_redis_use_ssl = {_CA}",
    )


def query_source(url: str, setting: str) -> Source:
    """The URL's query options (what redis-py reads from ``?ssl_cert_reqs=...``)."""
    query = url.partition("?")[2].partition("#")[0]
    return Source(
        f"the query of {setting} (?ssl_cert_reqs=...)",
        dict(parse_qsl(query, keep_blank_values=True)),
        f"remove ssl_cert_reqs from the URL, and give the CA with redbeat_redis_use_ssl = {_CA}",
    )


def warn_if_unverified(shown_url: str, sources: Sequence[Source], *, what: str = "") -> bool:
    """Log one warning when the ``ssl_cert_reqs`` that wins (the last of ``sources`` that sets
    it: later sources override earlier ones, as the client's keyword arguments do) turns
    verification off. ``what`` names the connections (``the sentinels``), default the
    storage server. Returns whether it warned (now, or once logging is set up)."""
    winner = None
    for source in sources:
        if OPTION in source.options:
            winner = source
    if winner is None or not verification_off(winner.options[OPTION]):
        return False
    notices.warn(  # kept until logging is set up, if it is not yet (celery beat's banner)
        logger,
        "beat: TLS certificate verification is OFF for %s (%s): ssl_cert_reqs=%r comes from "
        "%s. Anyone on the network path can pose as the server and read or rewrite the "
        "schedule, that is, run tasks. To verify the certificate, %s.",
        what or "RedBeat's storage",
        shown_url,
        winner.options[OPTION],
        winner.where,
        winner.fix,
    )
    return True
