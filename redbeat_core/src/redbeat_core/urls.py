"""Small helpers for storage URLs that every layer needs (no client library involved)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def url_scheme(url: str) -> str:
    """The scheme of a storage URL, lower case (``db+replicas`` for ``DB+Replicas://``)."""
    return urlsplit(url).scheme.lower()


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``**``, safe for logs, banners and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:**"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
