"""The edit form: what an operator typed, checked field by field, into
:meth:`Schedule.update` changes.

Each problem is reported against the field it belongs to (``{"cron": "..."}``), so the page
shows it next to that field; nothing is written unless every field is right, and the entry
API's own checks (:class:`InvalidEntryError`, naming the field) are mapped back to the form's
fields the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from redbeat.schedule_text import parse_cron, parse_once

__all__ = ["KINDS", "FormErrors", "edit_changes", "field_of"]

#: The schedule kinds the form offers, and the field holding each one's text.
KINDS: Final = {"every": "every", "cron": "cron", "at": "at"}


class FormErrors(ValueError):
    """Fields of a form and what is wrong with each."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def _text(form: Mapping[str, Any], key: str) -> str | None:
    value = form.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        return json.dumps(value) if isinstance(value, list | dict) else str(value)
    return value.strip() if value.strip() else None


def edit_changes(form: Mapping[str, Any]) -> dict[str, Any]:
    """The changes the form asks for; :class:`FormErrors` when a field is wrong.

    Fields (all optional; an empty one changes nothing): ``task``; ``kind`` (every, cron, at)
    with ``every`` (seconds), ``cron`` (five fields) and ``tz``, or ``at`` (ISO 8601);
    ``args`` (a JSON list), ``kwargs`` (a JSON object).
    """
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    task = _text(form, "task")
    if task is not None:
        changes["task"] = task
    kind = _text(form, "kind")
    if kind is not None:
        if kind not in KINDS:
            errors["kind"] = f"one of {', '.join(KINDS)}"
        else:
            text = _text(form, kind)
            tz = _text(form, "tz")
            if text is None:
                errors[kind] = "say when it runs"
            else:
                try:
                    changes["schedule"] = _schedule(kind, text, tz)
                except ValueError as exc:
                    errors["tz" if "zone" in str(exc).lower() and tz else kind] = str(exc)
    _json_fields(form, changes, errors)
    if errors:
        raise FormErrors(errors)
    if not changes:
        raise FormErrors({"form": "nothing to change: fill in a field"})
    return changes


def _json_fields(form: Mapping[str, Any], changes: dict[str, Any], errors: dict[str, str]) -> None:
    """``args`` (a JSON list) and ``kwargs`` (a JSON object) into ``changes`` or ``errors``."""
    for field, kind_of in (("args", list), ("kwargs", dict)):
        text = _text(form, field)
        if text is None:
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            errors[field] = f"not JSON: {exc}"
            continue
        if not isinstance(value, kind_of):
            errors[field] = (
                'a JSON list, such as [1, "a"]'
                if kind_of is list
                else 'a JSON object, such as {"key": "value"}'
            )
            continue
        changes[field] = value


def _schedule(kind: str, text: str, tz: str | None) -> Any:
    if kind == "every":
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"{text!r}: a number of seconds, such as 30 or 0.5") from None
        if not seconds > 0:
            raise ValueError(f"{text!r}: a positive number of seconds")
        return seconds
    if kind == "cron":
        return parse_cron(text, tz)
    return parse_once(text)


def field_of(api_field: str, form: Mapping[str, Any]) -> str:
    """The form field an entry API error names (``schedule`` is the kind's own field)."""
    if api_field == "schedule":
        kind = _text(form, "kind")
        return kind if kind in KINDS else "kind"
    if api_field in {"task", "args", "kwargs"}:
        return api_field
    return "form"
