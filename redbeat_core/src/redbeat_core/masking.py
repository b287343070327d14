"""Hiding secrets in what RedBeat shows: URLs in banners, errors and logs, option dicts in
errors and reprs.

A storage URL can carry a secret in several places, and each one is masked (``**``):

* the password of the userinfo: ``scheme://user:secret@host`` and ``scheme://:secret@host``
  (the user name is kept: it is no secret and tells an operator which account is used);
* query parameters whose name says they hold a secret (:func:`is_secret_name`):
  ``?password=...``, ``?ssl_password=...``, ``?token=...``, ``?api_key=...``, percent-encoded
  names included; other parameters (``username``, ``db``, ``socket_timeout``) are kept;
* a password holding an unencoded ``/``, ``?`` or ``#``, which ends the URL's host part early
  (``scheme://:pa/ss@host``): when an ``@`` follows where no ``@`` belongs, everything up to the
  last ``@`` is masked, whatever URL parsers make of it.

Every URL form is covered, since masking looks at the text only: several hosts
(``scheme://:secret@h1:1,h2:2/name``), socket and file paths (``unix://:secret@/path?db=1``,
where an ``@`` in the path is kept), IPv6 and URLs that do not parse. Masking never raises.

Option dicts (``{'password': ..., 'replica_kwargs': {'password': ...}}``) are masked key by
key with the same rule, recursively, by :func:`redacted`; a credential provider object under a
key such as ``credential_provider`` is masked too, not just its repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

__all__ = ["MASK", "is_secret_name", "mask_url", "redacted", "redacted_repr", "userinfo_spills"]

#: What a secret is replaced with.
MASK: Final = "**"

#: Names of options and query parameters that hold secrets: passwords (``password``,
#: ``ssl_password``, ``passwd``, ``pwd``), tokens, secrets, credentials (``credential_provider``),
#: anything about authentication or signatures, and keys that are secrets (``api_key``,
#: ``access_key``, ``private_key``, ``key``) but not names that merely end in "key"
#: (``lock_key``, ``ssl_keyfile`` are kept).
_SECRET_NAME: Final = re.compile(
    r"pass|pwd|secret|token|credential|auth|signature"
    r"|(?:^|[_.-])(?:api|access|private|signing|sas|session)[_-]?key$|^key$",
    re.IGNORECASE,
)
#: One host of a host list: ``name``, ``name:port``, ``[v6]`` or ``[v6]:port``.
_HOST: Final = re.compile(r"(?:\[[^\[\]@]*\]|[^\[\]:@]+)(?::\d*)?")


def is_secret_name(name: str) -> bool:
    """Whether an option or query parameter called ``name`` holds a secret (its value is
    masked wherever RedBeat shows it). ``username`` does not; ``password`` does."""
    return bool(_SECRET_NAME.search(name))


def mask_url(url: str) -> str:
    """``url`` with every secret it carries replaced by ``**`` (see the module's docstring),
    safe for logs, banners and errors. A URL without secrets is returned unchanged."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, tail = _split_authority(rest)
    if _spilled(authority, tail):
        # A password with an unencoded '/', '?' or '#' ended the host part early: all up to
        # the last '@' may be part of it.
        after = rest.rpartition("@")[2]
        authority, tail = _split_authority(after)
        return f"{head}://{MASK}@{authority}{_mask_tail(tail)}"
    userinfo, at, hosts = authority.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}{colon}{MASK if colon else ''}@{hosts}"
    return f"{head}://{authority}{_mask_tail(tail)}"


def userinfo_spills(url: str) -> bool:
    """Whether the URL's password holds an unencoded ``/``, ``?`` or ``#``, which ends the
    host part early (``scheme://:pa/ss@host``): URL parsers then read part of the password as
    a host, port or path. Such a URL is refused with advice to percent-encode the password."""
    _scheme, sep, rest = url.partition("://")
    return bool(sep) and _spilled(*_split_authority(rest))


def _split_authority(rest: str) -> tuple[str, str]:
    """What follows ``scheme://`` as (authority, path + query + fragment), as
    ``urllib.parse.urlsplit`` splits it (the authority ends at the first ``/``, ``?`` or
    ``#``), but never raising."""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return rest[:end], rest[end:]


def _spilled(authority: str, tail: str) -> bool:
    """Whether an ``@`` after the host part shows that the userinfo ran past it."""
    if "@" not in tail:
        return False
    body, _, fragment = tail.partition("#")  # split as urllib.parse.urlsplit does
    path, _, query = body.partition("?")
    if "@" in fragment:
        return True  # no URL form we read has a fragment, let alone one with an '@'
    if "@" in path and authority:
        return True  # a network URL's path is a database or service name, never an '@'
    if any("@" in item.partition("=")[0] for item in query.split("&")):
        return True  # "?ss@host": not a parameter but the rest of a password
    hosts = authority.rpartition("@")[2]
    return not all(_HOST.fullmatch(host) for host in hosts.split(",") if host)


def _mask_tail(tail: str) -> str:
    """Path, query and fragment, with the values of secret query parameters masked."""
    body, hash_, fragment = tail.partition("#")
    path, question, query = body.partition("?")
    return f"{path}{question}{_mask_query(query) if question else ''}{hash_}{fragment}"


def _mask_query(query: str) -> str:
    items = []
    for item in query.split("&"):
        name, equals, _value = item.partition("=")
        secret = equals and is_secret_name(unquote_plus(name))
        items.append(f"{name}={MASK}" if secret else item)
    return "&".join(items)


def redacted(value: Any) -> Any:
    """``value`` as it may be shown: URLs masked (:func:`mask_url`), and in mappings (nested
    ones, and mappings in lists and tuples, included) the values of secret keys replaced by
    ``**``. A secret set to None stays None (it says the secret is unset). Other values are
    returned as they are."""
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if isinstance(value, Mapping):
        return {
            key: (
                MASK
                if isinstance(key, str) and is_secret_name(key) and item is not None
                else redacted(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redacted(item) for item in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(redacted(item) for item in value)
    return value


def redacted_repr(value: Any) -> str:
    """``repr`` of :func:`redacted`: for attrs fields holding URLs or option dicts
    (``attrs.field(repr=redacted_repr)``)."""
    return repr(redacted(value))
