"""The plan as ``redbeat apply`` prints it: one line per addition, changed field and removal,
then what is left alone and a count. The same lines on a terminal (coloured by rich) and in a
pipe (plain), so a script, a CI log and an operator read the same thing."""

from __future__ import annotations

import json
import sys
from typing import Any, Final

import click

from redbeat.apply.plan import Change, Plan
from redbeat.apply.source import Wanted

__all__ = ["plan_lines", "print_lines", "summary"]

#: The colour of each kind of line on a terminal.
STYLES: Final = {"add": "green", "change": "yellow", "remove": "red", "note": "dim"}


def plan_lines(plan: Plan) -> list[tuple[str, str]]:
    """``(kind, text)`` for each line: ``+`` adds, ``~`` changes a field, ``-`` removes."""
    lines: list[tuple[str, str]] = []
    for entry in plan.add:
        lines.append(("add", f"+ {entry.name}: {_describe(entry)}"))
    for change in plan.change:
        lines.extend(_changes(change))
    for name in plan.remove:
        lines.append(("remove", f"- {name}"))
    if plan.unchanged:
        lines.append(("note", f"unchanged: {', '.join(plan.unchanged)}"))
    if plan.left_alone:
        lines.append(
            ("note", f"left alone (not in the file; --prune removes them): "
                     f"{', '.join(plan.left_alone)}")
        )  # fmt: skip
    if plan.static_kept:
        lines.append(
            ("note", f"kept (static: from beat_schedule or Celery's own; --prune never "
                     f"removes them): "
                     f"{', '.join(plan.static_kept)}")
        )  # fmt: skip
    return lines


def summary(plan: Plan, *, dry_run: bool) -> str:
    """The last line: the counts, and whether anything was written."""
    if not plan.writes:
        return f"nothing to change ({len(plan.unchanged)} unchanged)"
    if dry_run:
        return (
            f"dry run: {len(plan.add)} to add, {len(plan.change)} to change, "
            f"{len(plan.remove)} to remove, {len(plan.unchanged)} unchanged; nothing written"
        )
    return (
        f"applied: {len(plan.add)} added, {len(plan.change)} changed, "
        f"{len(plan.remove)} removed, {len(plan.unchanged)} unchanged"
    )


def print_lines(lines: list[tuple[str, str]]) -> None:
    """Coloured by rich on a terminal; plain when piped (and under ``NO_COLOR``)."""
    if not sys.stdout.isatty():
        for _, text in lines:
            click.echo(text)
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(soft_wrap=True)  # long lines wrap on the terminal, not in the text
    for kind, text in lines:
        console.print(Text(text, style=STYLES.get(kind, "")))


def _describe(entry: Wanted) -> str:
    from redbeat_core.words import describe_schedule

    parts = [entry.task, describe_schedule(entry.schedule)]
    for field in ("args", "kwargs", "options"):
        value = getattr(entry, field)
        if value:
            parts.append(f"{field} {_json(value)}")
    if not entry.enabled:
        parts.append("disabled")
    return ", ".join(parts)


def _changes(change: Change) -> list[tuple[str, str]]:
    """A line per changed field, then what is worth knowing about the entry."""
    lines = [
        ("change", f"~ {change.name}: {item.field} {_shown(item.field, item.before)} -> "
                   f"{_shown(item.field, item.after)}")
        for item in change.fields
    ]  # fmt: skip
    if change.quarantined:
        lines.append(("change", f"~ {change.name}: leaves the quarantine"))
    if change.paused:
        lines.append(("note", f"  {change.name} stays paused"))
    if change.static:
        lines.append(
            ("note", f"  {change.name} comes from beat_schedule: the next beat start puts "
                     "that definition back")
        )  # fmt: skip
    return lines


def _shown(field: str, value: Any) -> str:
    if value is None:  # the stored definition cannot be read (None is no valid field value)
        return "(cannot be read)"
    return str(value) if field in ("schedule", "task") else _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, default=str)
