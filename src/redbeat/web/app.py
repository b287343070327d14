"""The dashboard as an ASGI app (Starlette): pages, the fragments htmx refreshes them with,
and the JSON endpoints, all over :class:`redbeat_core.catalog.Schedule`.

Build it with :func:`create_app`; ``redbeat web`` serves it with uvicorn. The schedule API
blocks on its storage, so every call to it runs in Starlette's thread pool.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import attrs
import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from redbeat.web.listing import NameIndex
from redbeat.web.security import CSRF_COOKIE, Auth, Guard
from redbeat_core.catalog import Schedule
from redbeat_core.masking import mask_url
from redbeat_core.runtime import get_runtime

__all__ = ["Dashboard", "create_app"]

T = TypeVar("T")


@attrs.define
class Dashboard:
    """What every request of one dashboard shares: the schedule, the cached names, the auth
    settings and the templates."""

    schedule: Schedule
    auth: Auth
    names: NameIndex
    templates: jinja2.Environment
    #: How often the pages refresh their data (seconds).
    refresh: float = 2.0

    @property
    def app(self) -> Any:
        return self.schedule.app

    @property
    def tz(self) -> Any:
        return self.app.timezone

    def storage(self) -> str:
        """The storage URL with its secrets masked (never the password)."""
        return mask_url(get_runtime(self.app).config.url)

    def lease(self) -> float:
        return float(get_runtime(self.app).config.lock_timeout)


def dashboard(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.dashboard
    return board


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking schedule call in the thread pool."""
    return await run_in_threadpool(function, *args, **kwargs)


def now() -> datetime:
    return datetime.now(UTC)


def wants_fragment(request: Request) -> bool:
    """Whether htmx sent the request (it then swaps the HTML the endpoint returns)."""
    return request.headers.get("hx-request") == "true"


def csrf_cookie(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie, or a new one (True: it must be set)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie and len(cookie) <= 128:
        return cookie, False
    return secrets.token_urlsafe(24), True


def render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """A template rendered with what every page needs (the CSRF token, the path prefix)."""
    board = dashboard(request)
    cookie, fresh = csrf_cookie(request)
    root = request.scope.get("root_path", "")
    page = board.templates.get_template(template).render(
        **context,
        request=request,
        root=root,
        csrf_token=board.auth.csrf_token(cookie),
        read_only=board.auth.read_only,
        refresh=board.refresh,
        storage=board.storage(),
        timezone=str(board.tz),
        entry_url=lambda name: f"{root}/entries/{quote(name, safe='')}",
        api_url=lambda name, action="": (
            f"{root}/api/entries/{quote(name, safe='')}" + (f"/{action}" if action else "")
        ),
        query_string=urlencode,
    )
    response = HTMLResponse(page, status_code=status)
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            cookie,
            path=root or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


class SafeJSONResponse(JSONResponse):
    """JSON with ``<``, ``>`` and ``&`` escaped (``\u003c``...): the same data, but a name
    like ``</script><script>`` cannot end a script block or start markup, wherever the JSON
    ends up (a page that embeds it, a browser that sniffs it as HTML)."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escaped)
        return text.encode("utf-8")


def json_response(data: Any, status: int = 200) -> JSONResponse:
    return SafeJSONResponse(data, status_code=status)


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("redbeat.web", "templates"),
        autoescape=True,  # every value is escaped: names and arguments render as text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment


def create_app(
    app: Any,
    auth: Auth | None = None,
    *,
    refresh: float = 2.0,
    names_ttl: float | None = None,
) -> Starlette:
    """The dashboard of the Celery app ``app``'s schedule.

    :param auth: who may use it (default: nobody is asked, for the loopback only).
    :param refresh: how often pages refresh their data, in seconds.
    :param names_ttl: how long the sorted entry names are reused (see
        :mod:`redbeat.web.listing`).
    """
    from redbeat.web import api, pages

    auth = auth or Auth()
    schedule = Schedule(app)
    index = NameIndex(schedule) if names_ttl is None else NameIndex(schedule, ttl=names_ttl)
    board = Dashboard(schedule, auth, index, _templates(), refresh=refresh)
    routes: list[BaseRoute] = [
        *pages.routes(),
        *api.routes(),
        Mount("/static", StaticFiles(packages=[("redbeat.web", "static")]), name="static"),
    ]
    starlette = Starlette(routes=routes, middleware=[Middleware(Guard, auth=auth)])
    starlette.state.dashboard = board
    return starlette


def not_found(message: str) -> Response:
    return json_response({"error": message}, 404)


__all__ += ["Route", "call", "dashboard", "json_response", "now", "render", "wants_fragment"]
