"""Who may use the dashboard, and proof that a change came from its own pages.

* **Binding**: :func:`check_bind` refuses an address other than the loopback unless a token
  or basic auth is configured: a dashboard that pauses and deletes entries must never be open
  to a network by accident.
* **Authentication** (:class:`Guard`, an ASGI middleware): a bearer token
  (``Authorization: Bearer ...``, or the session cookie the login page sets after the token
  was typed in) and/or HTTP basic auth. Secrets are compared in constant time.
* **Read-only**: every request that changes something is refused (403).
* **CSRF**: every request that changes something (any method but GET, HEAD, OPTIONS) must
  carry the header ``X-CSRF-Token`` holding the token the pages embed: an HMAC of the
  browser's ``redbeat-csrf`` cookie under this process's secret (a signed double-submit
  cookie). Another site can make a browser send the cookie, but can neither read it nor set
  the header. Scripts get a token from ``GET /api/csrf``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any, Final

import attrs

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Auth",
    "BindRefusedError",
    "Guard",
    "check_bind",
    "is_loopback",
]

CSRF_COOKIE: Final = "redbeat-csrf"
CSRF_HEADER: Final = "x-csrf-token"
SESSION_COOKIE: Final = "redbeat-session"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths anyone may reach: the static files and the login page.
OPEN_PREFIXES: Final = ("/static/", "/login")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BindRefusedError(ValueError):
    """``redbeat web`` was asked to listen beyond the loopback without authentication."""


@attrs.frozen
class Auth:
    """How the dashboard checks who calls it. Without a token and without basic auth it
    checks nobody (allowed on the loopback only, see :func:`check_bind`)."""

    token: str | None = attrs.field(default=None, repr=False)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    read_only: bool = False
    #: Signs CSRF tokens and session cookies: random per process unless given (several
    #: processes behind one proxy must share it).
    secret: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), repr=False)

    def __attrs_post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError(
                "basic auth needs both a user name and a password "
                "(--user/REDBEAT_WEB_USER and REDBEAT_WEB_PASSWORD)"
            )
        for what, value in (("token", self.token), ("password", self.password)):
            if value is not None and not value:
                raise ValueError(f"the {what} is empty: give a non-empty one, or none")

    @property
    def required(self) -> bool:
        return self.token is not None or self.username is not None

    def csrf_token(self, cookie: str) -> str:
        """The token that goes with the CSRF cookie ``cookie``."""
        return hmac.new(self.secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        """The session cookie's value once the token was given: derived from the token, so
        the cookie never holds the token itself."""
        assert self.token is not None
        return hmac.new(self.secret, b"session:" + self.token.encode(), "sha256").hexdigest()

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _basic_matches(self, header: str) -> bool:
        if self.username is None or self.password is None:
            return False
        try:
            decoded = base64.b64decode(header, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return hmac.compare_digest(user.encode(), self.username.encode()) & hmac.compare_digest(
            password.encode(), self.password.encode()
        )

    def allows(self, headers: dict[str, str], cookies: dict[str, str]) -> bool:
        """Whether a request with these headers and cookies is authenticated."""
        if not self.required:
            return True
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(value.strip()):
            return True
        if scheme.lower() == "basic" and self._basic_matches(value.strip()):
            return True
        session = cookies.get(SESSION_COOKIE)
        return (
            self.token is not None
            and session is not None
            and hmac.compare_digest(session.encode(), self.session_value().encode())
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: Auth) -> None:
    """Refuse to listen on ``host`` beyond the loopback without authentication."""
    if is_loopback(host) or auth.required:
        return
    raise BindRefusedError(
        f"refusing to listen on {host}: beyond 127.0.0.1 the dashboard needs authentication. "
        "Set a token (REDBEAT_WEB_TOKEN) or basic auth (REDBEAT_WEB_USER and "
        "REDBEAT_WEB_PASSWORD), and add --read-only for a view that changes nothing"
    )


@attrs.define
class Guard:
    """ASGI middleware: authentication, read-only mode and the CSRF check, before any
    endpoint runs."""

    app: ASGIApp
    auth: Auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = _cookies(headers)
        method = scope["method"]
        if not path.startswith(OPEN_PREFIXES) and not self.auth.allows(headers, cookies):
            await self._unauthenticated(scope, headers, send)
            return
        if method not in SAFE_METHODS and not path.startswith("/login"):
            if self.auth.read_only:
                await _refuse(send, 403, "the dashboard runs read-only (--read-only)")
                return
            cookie = cookies.get(CSRF_COOKIE)
            given = headers.get(CSRF_HEADER, "")
            if not cookie or not hmac.compare_digest(
                given.encode(), self.auth.csrf_token(cookie).encode()
            ):
                await _refuse(
                    send,
                    403,
                    "missing or wrong CSRF token: send the X-CSRF-Token header the pages "
                    "carry, with their redbeat-csrf cookie (scripts: GET /api/csrf first)",
                )
                return
        await self.app(scope, receive, send)

    async def _unauthenticated(self, scope: Scope, headers: dict[str, str], send: Send) -> None:
        wants_page = scope["method"] == "GET" and "text/html" in headers.get("accept", "")
        if self.auth.token is not None and wants_page and "hx-request" not in headers:
            login = scope.get("root_path", "") + "/login"
            await send(
                {"type": "http.response.start", "status": 303, "headers": [
                    (b"location", login.encode()), (b"content-length", b"0")]}
            )  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return
        extra = []
        if self.auth.username is not None:
            extra.append((b"www-authenticate", b'Basic realm="RedBeat", charset="UTF-8"'))
        await _refuse(send, 401, "authentication required: a token or basic auth", extra)


def _route_path(scope: Scope) -> str:
    """The path without the reverse proxy's prefix (uvicorn puts ``root_path`` in front)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no cookie
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


async def _refuse(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
