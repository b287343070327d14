"""The HTML pages and the fragments htmx swaps into them (live refresh, actions' results)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from redbeat.web.app import call, dashboard, now, render
from redbeat.web.listing import Query, page_of
from redbeat.web.present import entry_json, timeline
from redbeat.web.security import SESSION_COOKIE
from redbeat_core.catalog import EntryNotFoundError, EntryState

__all__ = ["edit_form", "edit_saved", "entry_panels", "routes"]

STATES = [state.value for state in EntryState]


async def _rows_context(request: Request) -> tuple[dict[str, Any], int]:
    board = dashboard(request)
    try:
        query = Query.from_params(request.query_params)
    except ValueError as exc:
        return {"query": Query(), "error": str(exc), "rows": [], "page": None}, 400
    page = await call(page_of, board.schedule, board.names, query)
    records = await call(_last_records, board.schedule, [i.name for i in page.entries])
    moment = now()
    rows = [entry_json(info, board.tz, moment, records.get(info.name)) for info in page.entries]
    return {"query": query, "error": None, "rows": rows, "page": page}, 200


def _last_records(schedule: Any, names: list[str]) -> dict[str, Any]:
    """Each listed entry's newest history record (its last run's lateness): one read each."""
    if not schedule.keeps_history:
        return {}
    found = {}
    for name in names:
        records = schedule.history(name, 1)
        if records:
            found[name] = records[0]
    return found


async def list_page(request: Request) -> Response:
    context, status = await _rows_context(request)
    return render(request, "list.html", {**context, "states": STATES}, status)


async def rows_fragment(request: Request) -> Response:
    context, status = await _rows_context(request)
    return render(request, "_rows.html", context, status)


async def _entry_context(request: Request, name: str) -> dict[str, Any] | None:
    from redbeat.web.api import entry_detail

    board = dashboard(request)
    try:
        entry = await call(entry_detail, board.schedule, name, board.tz)
    except EntryNotFoundError:
        return None
    records = await call(board.schedule.history, name, 40)
    return {"entry": entry, "name": name, "chart": timeline(records)}


async def entry_page(request: Request) -> Response:
    name: str = request.path_params["name"]
    context = await _entry_context(request, name)
    if context is None:
        return render(request, "missing.html", {"name": name}, 404)
    return render(
        request, "entry.html", {**context, "form": _form_values(context["entry"]), "errors": {}}
    )


async def entry_fragment(request: Request) -> Response:
    name: str = request.path_params["name"]
    context = await _entry_context(request, name)
    if context is None:
        return render(request, "_missing.html", {"name": name})
    return render(request, "_entry_live.html", context)


async def entry_panels(
    request: Request, name: str, *, flash: str, failed: bool = False
) -> Response:
    """After an action: the actions panel, with the live panel and a message swapped in
    out of band."""
    context = await _entry_context(request, name)
    if context is None:
        return render(request, "_missing.html", {"name": name, "flash": flash})
    return render(
        request, "_actions.html", {**context, "flash": flash, "failed": failed, "oob": True}
    )


def _form_values(entry: dict[str, Any]) -> dict[str, str]:
    import json

    return {
        "task": entry.get("task") or "",
        "args": json.dumps(entry.get("args") or []),
        "kwargs": json.dumps(entry.get("kwargs") or {}),
    }


async def edit_form(
    request: Request, name: str, fields: dict[str, Any], errors: dict[str, str]
) -> Response:
    """The edit form again, with what was typed and each error next to its field."""
    values = {key: str(value) for key, value in fields.items()}
    return render(request, "_edit.html", {"name": name, "form": values, "errors": errors})


async def edit_saved(request: Request, name: str) -> Response:
    context = await _entry_context(request, name)
    if context is None:
        return render(request, "_missing.html", {"name": name})
    return render(
        request,
        "_edit.html",
        {
            **context,
            "form": _form_values(context["entry"]),
            "errors": {},
            "saved": f"changed {name}",
            "oob": True,
        },
    )


async def cluster_page(request: Request) -> Response:
    from redbeat.web.api import cluster

    data = await call(cluster, dashboard(request))
    return render(request, "cluster.html", {"cluster": data})


async def cluster_fragment(request: Request) -> Response:
    from redbeat.web.api import cluster

    data = await call(cluster, dashboard(request))
    template = "_cluster_table.html" if request.query_params.get("full") else "_cluster.html"
    return render(request, template, {"cluster": data})


async def banner_fragment(request: Request) -> Response:
    from redbeat.web.api import cluster

    data = await call(cluster, dashboard(request))
    return render(request, "_banner.html", {"cluster": data})


async def login_page(request: Request) -> Response:
    board = dashboard(request)
    if request.method == "POST":
        form = await request.form()
        token = form.get("token")
        if isinstance(token, str) and board.auth.token_matches(token.strip()):
            root = request.scope.get("root_path", "")
            response = RedirectResponse(f"{root}/", status_code=303)
            response.set_cookie(
                SESSION_COOKIE,
                board.auth.session_value(),
                path=root or "/",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response
        return render(request, "login.html", {"error": "that token is not the right one"}, 401)
    return render(request, "login.html", {"error": None})


def routes() -> list[BaseRoute]:
    return [
        Route("/", list_page, methods=["GET"]),
        Route("/cluster", cluster_page, methods=["GET"]),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/fragments/rows", rows_fragment, methods=["GET"]),
        Route("/fragments/cluster", cluster_fragment, methods=["GET"]),
        Route("/fragments/banner", banner_fragment, methods=["GET"]),
        Route("/fragments/entry/{name:path}", entry_fragment, methods=["GET"]),
        Route("/entries/{name:path}", entry_page, methods=["GET"]),
    ]
