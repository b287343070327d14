"""The JSON endpoints (``/api/...``) and the actions.

Every action answers in JSON, or, when htmx sent it, with the HTML that replaces the entry's
panels (an action's outcome or error is then shown on the page, next to the field it is
about for the edit form). The OpenAPI document (``/api/openapi.json``) lists them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from redbeat.web import pages
from redbeat.web.app import call, dashboard, json_response, now, wants_fragment
from redbeat.web.forms import FormErrors, edit_changes, field_of
from redbeat.web.listing import Query, page_of
from redbeat.web.openapi import document
from redbeat.web.present import cluster_json, entry_json, record_json
from redbeat_core.catalog import EntryInfo, EntryNotFoundError, Schedule
from redbeat_core.exceptions import EntryDecodeError, InvalidEntryError, RedBeatError

__all__ = ["routes"]

#: How many history records the entry's endpoint and page show.
HISTORY: int = 50


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


def _error(message: str, status: int) -> JSONResponse:
    return json_response({"error": message}, status)


async def list_entries(request: Request) -> Response:
    board = dashboard(request)
    try:
        query = Query.from_params(request.query_params)
    except ValueError as exc:
        return _error(str(exc), 400)
    page = await call(page_of, board.schedule, board.names, query)
    moment = now()
    rows = [entry_json(info, board.tz, moment) for info in page.entries]
    return json_response(
        {
            "entries": rows,
            "total": page.total,
            "offset": query.offset,
            "limit": query.limit,
            "next_cursor": page.next_cursor,
            "scanned": page.scanned,
            "names_total": page.names_total,
        }
    )


def entry_detail(schedule: Schedule, name: str, tz: Any, history: int = HISTORY) -> dict[str, Any]:
    """Everything the entry page shows: the entry, its next 10 runs and its history."""
    info = schedule.get(name)
    records = schedule.history(name, history)
    moment = now()
    data = entry_json(info, tz, moment, records[0] if records else None)
    data["next_runs"] = [
        {"utc": run.isoformat(), "local": f"{run.astimezone(tz):%Y-%m-%d %H:%M:%S %Z}"}
        for run in schedule.next_runs(name, 10)
    ]
    data["history"] = [record_json(record, tz, moment) for record in records]
    data["keeps_history"] = schedule.keeps_history
    return data


async def get_entry(request: Request) -> Response:
    board = dashboard(request)
    try:
        data = await call(entry_detail, board.schedule, _name(request), board.tz)
    except EntryNotFoundError as exc:
        return _error(str(exc), 404)
    return json_response(data)


async def get_history(request: Request) -> Response:
    board = dashboard(request)
    name = _name(request)
    try:
        limit = min(max(int(request.query_params.get("limit", "50")), 1), 1000)
    except ValueError:
        return _error("limit: a whole number from 1 to 1000", 400)
    try:
        await call(board.schedule.get, name)
    except EntryNotFoundError as exc:
        return _error(str(exc), 404)
    records = await call(board.schedule.history, name, limit)
    moment = now()
    return json_response([record_json(r, board.tz, moment) for r in records])


def cluster(board: Any) -> dict[str, Any]:
    """The beats' lock as the cluster panel shows it; ``{"lock": None, "why": ...}`` when the
    app runs without a lock."""
    try:
        status = board.schedule.lock_status()
    except ValueError as exc:
        return {"lock": None, "why": str(exc)}
    return {"lock": cluster_json(status, board.lease(), now()), "why": None}


async def get_cluster(request: Request) -> Response:
    return json_response(await call(cluster, dashboard(request)))


async def get_csrf(request: Request) -> Response:
    """A CSRF token for scripts, with the cookie it goes with."""
    from redbeat.web.app import csrf_cookie
    from redbeat.web.security import CSRF_COOKIE

    board = dashboard(request)
    cookie, fresh = csrf_cookie(request)
    response = json_response(
        {"token": board.auth.csrf_token(cookie), "header": "X-CSRF-Token", "cookie": CSRF_COOKIE}
    )
    if fresh:
        root = request.scope.get("root_path", "")
        response.set_cookie(CSRF_COOKIE, cookie, path=root or "/", httponly=True, samesite="strict")
    return response


async def get_openapi(request: Request) -> Response:
    return json_response(document(request.scope.get("root_path", "")))


# ----------------------------------------------------------------------------- actions


async def _body(request: Request) -> dict[str, Any]:
    """The request's fields: a JSON object, or a form (what htmx sends)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            raise FormErrors({"form": "the body is not JSON"}) from None
        if not isinstance(data, dict):
            raise FormErrors({"form": "the body is a JSON object"})
        return data
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _action(
    run: Callable[[Schedule, str, dict[str, Any]], EntryInfo | None], done: str
) -> Callable[[Request], Any]:
    """An endpoint that runs ``run(schedule, name, fields)`` and answers with the entry."""

    async def endpoint(request: Request) -> Response:
        board = dashboard(request)
        name = _name(request)
        try:
            fields = await _body(request)
            await call(run, board.schedule, name, fields)
        except EntryNotFoundError as exc:
            return await _failed(request, name, str(exc), 404)
        except FormErrors as exc:
            return await _failed(request, name, "; ".join(exc.errors.values()), 422)
        except (RedBeatError, ValueError) as exc:
            return await _failed(request, name, str(exc), 422)
        message = done.format(name=name)
        if wants_fragment(request):
            return await pages.entry_panels(request, name, flash=message)
        info = await call(board.schedule.get, name)
        return json_response({"done": message, "entry": entry_json(info, board.tz, now())})

    return endpoint


async def _failed(request: Request, name: str, message: str, status: int) -> Response:
    if wants_fragment(request):
        return await pages.entry_panels(request, name, flash=message, failed=True)
    return _error(message, status)


def _pause(schedule: Schedule, name: str, fields: dict[str, Any]) -> EntryInfo:
    reason = str(fields.get("reason") or "").strip()
    if not reason:
        raise FormErrors({"reason": "say why it is paused (shown to everyone)"})
    return schedule.pause(name, reason, by=str(fields.get("by") or "") or None)


def _run_now(schedule: Schedule, name: str, fields: dict[str, Any]) -> None:
    schedule.run_now(name, by=str(fields.get("by") or "") or None)


ACTIONS: dict[str, tuple[Callable[[Schedule, str, dict[str, Any]], Any], str]] = {
    "pause": (_pause, "paused {name}"),
    "resume": (lambda s, n, f: s.resume(n), "resumed {name}"),
    "enable": (lambda s, n, f: s.enable(n), "enabled {name}"),
    "disable": (lambda s, n, f: s.disable(n), "disabled {name}"),
    "run": (_run_now, "asked the leading beat to run {name} once, at its next tick"),
    "restore": (lambda s, n, f: s.restore(n), "restored {name}"),
}


async def edit_entry(request: Request) -> Response:
    """Change the task, schedule or arguments (``PATCH``); every field is checked first and
    nothing is written when one is wrong (``422`` with ``{"errors": {field: message}}``)."""
    board = dashboard(request)
    name = _name(request)
    fields: dict[str, Any] = {}
    try:
        fields = await _body(request)
        changes = edit_changes(fields)
        await call(board.schedule.update, name, **changes)
    except EntryNotFoundError as exc:
        return _error(str(exc), 404)
    except FormErrors as exc:
        return await _edit_failed(request, name, fields, exc.errors)
    except (InvalidEntryError, EntryDecodeError) as exc:
        field = field_of(getattr(exc, "field", "form"), fields)
        return await _edit_failed(request, name, fields, {field: str(exc)})
    except (RedBeatError, ValueError) as exc:
        return await _edit_failed(request, name, fields, {"form": str(exc)})
    if wants_fragment(request):
        return await pages.edit_saved(request, name)
    info = await call(board.schedule.get, name)
    return json_response({"done": f"changed {name}", "entry": entry_json(info, board.tz, now())})


async def _edit_failed(
    request: Request, name: str, fields: dict[str, Any], errors: dict[str, str]
) -> Response:
    if wants_fragment(request):
        return await pages.edit_form(request, name, fields, errors)
    return json_response({"errors": errors}, 422)


async def delete_entry(request: Request) -> Response:
    board = dashboard(request)
    name = _name(request)
    try:
        await call(board.schedule.delete, name)
    except EntryNotFoundError as exc:
        return _error(str(exc), 404)
    board.names.forget()
    if wants_fragment(request):
        root = request.scope.get("root_path", "")
        return Response(status_code=204, headers={"HX-Redirect": f"{root}/"})
    return json_response({"done": f"deleted {name}"})


def routes() -> list[BaseRoute]:
    """The API's routes; an action's path ends in its name, so they come before the entry's
    own path (a name may hold ``/``)."""
    found: list[BaseRoute] = [
        Route("/api/openapi.json", get_openapi, methods=["GET"]),
        Route("/api/csrf", get_csrf, methods=["GET"]),
        Route("/api/cluster", get_cluster, methods=["GET"]),
        Route("/api/entries", list_entries, methods=["GET"]),
    ]
    for action, (run, done) in ACTIONS.items():
        found.append(
            Route(f"/api/entries/{{name:path}}/{action}", _action(run, done), methods=["POST"])
        )
    found += [
        Route("/api/entries/{name:path}/history", get_history, methods=["GET"]),
        Route("/api/entries/{name:path}", get_entry, methods=["GET"]),
        Route("/api/entries/{name:path}", edit_entry, methods=["PATCH"]),
        Route("/api/entries/{name:path}", delete_entry, methods=["DELETE"]),
    ]
    return found
