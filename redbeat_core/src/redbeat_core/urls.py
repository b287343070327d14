"""Small helpers for storage URLs that every layer needs (no client library involved).

:func:`mask_url` (every secret a URL can carry, masked) lives in :mod:`redbeat_core.masking`
and is importable from here too.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from redbeat_core.masking import mask_url

__all__ = ["mask_url", "url_scheme"]


def url_scheme(url: str) -> str:
    """The scheme of a storage URL, lower case (``db+replicas`` for ``DB+Replicas://``)."""
    return urlsplit(url).scheme.lower()
