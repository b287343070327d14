"""The OpenAPI 3.1 document of the dashboard's JSON endpoints (``GET /api/openapi.json``).

Starlette gives no schema by itself, so it is written here, next to nothing else; a test
checks that every ``/api`` route is in it and that nothing in it is missing from the routes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["document"]

_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The entry's name, percent-encoded.",
    "schema": {"type": "string"},
}
_CSRF = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": True,
    "description": "From GET /api/csrf (with the redbeat-csrf cookie it sets).",
    "schema": {"type": "string"},
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answers(ok: str, schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    found: dict[str, Any] = {"200": {"description": ok, "content": _json(schema)}}
    for status in errors:
        found[str(status)] = {"description": _REASONS[status], "content": _json(_ref("Error"))}
    return found


_REASONS = {
    400: "A query parameter is wrong (named, with what it accepts).",
    401: "Authentication required (a bearer token or basic auth).",
    403: "No or a wrong CSRF token, or the dashboard runs read-only.",
    404: "No entry of that name is stored.",
    422: "The schedule API refused the change (the reason says why).",
}

_ACTIONS = {
    "pause": "Take the entry out of the schedule with a reason (body: reason, optional by).",
    "resume": "Put a paused entry back in the schedule.",
    "enable": "Put a disabled entry back in the schedule.",
    "disable": "Take the entry out of the schedule, keeping it and its runs.",
    "run": "Ask the leading beat to run the entry once, at its next tick (a manual run).",
    "restore": "Put a quarantined entry back in the schedule once it can run.",
}


def _action(action: str, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "object"}
    if action == "pause":
        body["properties"] = {"reason": {"type": "string"}, "by": {"type": "string"}}
        body["required"] = ["reason"]
    return {
        "post": {
            "summary": text,
            "operationId": f"{action}_entry",
            "parameters": [_NAME, _CSRF],
            "requestBody": {"required": False, "content": _json(body)},
            "responses": _answers("Done", _ref("ActionResult"), 401, 403, 404, 422),
        }
    }


def document(root_path: str = "") -> dict[str, Any]:
    """The OpenAPI document; ``root_path`` is the reverse proxy's prefix, if any."""
    list_params = [
        {"name": key, "in": "query", "required": False, "description": text, "schema": schema}
        for key, text, schema in (
            ("match", "Name: a glob, or a word the name contains.", {"type": "string"}),
            ("task", "Task: a glob, or a word the task contains.", {"type": "string"}),
            (
                "state",
                "Only this state.",
                {"enum": ["scheduled", "paused", "disabled", "finished", "quarantined"]},
            ),
            (
                "sort",
                "name (default) or next (scheduled entries by next run).",
                {"enum": ["name", "next"]},
            ),
            ("offset", "Where the page starts (unfiltered lists).", {"type": "integer"}),
            ("limit", "Page size, 1 to 500 (50).", {"type": "integer"}),
            ("cursor", "Where a filtered scan goes on (next_cursor).", {"type": "integer"}),
        )
    ]
    paths: dict[str, Any] = {
        "/api/entries": {
            "get": {
                "summary": "One page of entries (paged on the server).",
                "operationId": "list_entries",
                "parameters": list_params,
                "responses": _answers("A page", _ref("EntryPage"), 400, 401),
            }
        },
        "/api/entries/{name}": {
            "get": {
                "summary": "An entry with its next 10 runs and its history.",
                "operationId": "get_entry",
                "parameters": [_NAME],
                "responses": _answers("The entry", _ref("EntryDetail"), 401, 404),
            },
            "patch": {
                "summary": "Change the task, schedule or arguments; nothing is written when a "
                "field is wrong (422 with errors by field).",
                "operationId": "edit_entry",
                "parameters": [_NAME, _CSRF],
                "requestBody": {"required": True, "content": _json(_ref("Edit"))},
                "responses": {
                    **_answers("Changed", _ref("ActionResult"), 401, 403, 404),
                    "422": {
                        "description": "Errors by field",
                        "content": _json(_ref("FieldErrors")),
                    },
                },
            },
            "delete": {
                "summary": "Delete the entry.",
                "operationId": "delete_entry",
                "parameters": [_NAME, _CSRF],
                "responses": _answers("Deleted", {"type": "object"}, 401, 403, 404),
            },
        },
        "/api/entries/{name}/history": {
            "get": {
                "summary": "The entry's run history, newest first.",
                "operationId": "get_history",
                "parameters": [
                    _NAME,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer"},
                    },
                ],
                "responses": _answers(
                    "Records", {"type": "array", "items": _ref("Record")}, 400, 401, 404
                ),
            }
        },
        "/api/cluster": {
            "get": {
                "summary": "The beats: leader, since, lease left, epoch, standbys, last tick.",
                "operationId": "get_cluster",
                "responses": _answers("The lock", _ref("Cluster"), 401),
            }
        },
        "/api/csrf": {
            "get": {
                "summary": "A CSRF token for scripts (sets the redbeat-csrf cookie).",
                "operationId": "get_csrf",
                "responses": _answers("A token", {"type": "object"}, 401),
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document.",
                "operationId": "get_openapi",
                "responses": _answers("OpenAPI 3.1", {"type": "object"}, 401),
            }
        },
    }
    for action, text in _ACTIONS.items():
        paths[f"/api/entries/{{name}}/{action}"] = _action(action, text)
    moment = {
        "type": ["object", "null"],
        "properties": {k: {"type": "string"} for k in ("utc", "utc_text", "local", "relative")},
    }
    entry = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "task": {"type": ["string", "null"]},
            "schedule": {"type": "string", "description": "In words."},
            "state": {"enum": ["scheduled", "paused", "disabled", "finished", "quarantined"]},
            "reason": {"type": ["string", "null"]},
            "next_run": {"type": ["string", "null"], "format": "date-time"},
            "next": moment,
            "last": moment,
            "total_run_count": {"type": "integer"},
            "args": {"type": "array"},
            "kwargs": {"type": "object"},
            "policy": {"type": "object"},
        },
    }
    record = {
        "type": "object",
        "properties": {
            "outcome": {"enum": ["sent", "failed", "unsent", "skipped", "postponed"]},
            "manual": {"type": "boolean"},
            "due_at": moment,
            "at": moment,
            "lateness": {"type": "number"},
            "task_id": {"type": ["string", "null"]},
            "beat": {"type": ["string", "null"]},
            "epoch": {"type": "integer"},
            "reason": {"type": ["string", "null"]},
        },
    }
    schemas = {
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
        "Entry": entry,
        "Record": record,
        "EntryPage": {
            "type": "object",
            "properties": {
                "entries": {"type": "array", "items": _ref("Entry")},
                "total": {"type": ["integer", "null"]},
                "next_cursor": {"type": ["integer", "null"]},
                "scanned": {"type": ["integer", "null"]},
            },
        },
        "EntryDetail": {
            "allOf": [
                _ref("Entry"),
                {
                    "type": "object",
                    "properties": {
                        "next_runs": {"type": "array"},
                        "history": {"type": "array", "items": _ref("Record")},
                    },
                },
            ]
        },
        "Edit": {
            "type": "object",
            "properties": {
                "task": {"type": "string"},
                "kind": {"enum": ["every", "cron", "at"]},
                "every": {"type": "string"},
                "cron": {"type": "string"},
                "tz": {"type": "string"},
                "at": {"type": "string"},
                "args": {"type": "array"},
                "kwargs": {"type": "object"},
            },
        },
        "FieldErrors": {
            "type": "object",
            "properties": {
                "errors": {"type": "object", "additionalProperties": {"type": "string"}}
            },
        },
        "ActionResult": {
            "type": "object",
            "properties": {"done": {"type": "string"}, "entry": _ref("Entry")},
        },
        "Cluster": {
            "type": "object",
            "properties": {
                "lock": {"type": ["object", "null"]},
                "why": {"type": ["string", "null"]},
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "RedBeat dashboard", "version": "1"},
        "servers": [{"url": root_path or "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }
