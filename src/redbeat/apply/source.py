"""Reading the file ``redbeat apply`` takes: TOML, JSON or YAML, by its extension.

The format is Celery's ``beat_schedule`` written down, with the schedule spelled as the
``redbeat add`` options spell it, so one crontab reads the same on the command line and in a
file::

    [entries.nightly]
    task = "tasks.report"
    cron = "0 3 * * *"           # or every = SECONDS, or at = an ISO 8601 time (once)
    tz = "Europe/Paris"          # optional: the cron's own time zone
    args = [7]
    kwargs = { region = "eu" }
    options = { queue = "reports" }
    enabled = true               # the default
    policy = { misfire = "skip", jitter = 30 }   # scheduling policy (docs/policies.md)

Everything the file says is checked here for its shape (a field of the wrong type, a field
no entry has, a crontab of four fields), each problem naming the file, the entry and the field
with what is accepted. Whether RedBeat can store the entry is checked by ``Schedule.check``
before anything is written.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from redbeat.schedule_text import (
    CRON,
    EVERY,
    ONCE,
    interval_of,
    parse_cron,
    parse_moment,
    parse_once,
)
from redbeat_core.model import POLICY_FIELDS

__all__ = ["EXTENSIONS", "FIELDS", "ApplyFileError", "Wanted", "read_entries"]

#: The file formats, by extension.
EXTENSIONS: Final = (".toml", ".json", ".yaml", ".yml")
#: The fields of an entry; exactly one of ``every``, ``cron`` and ``at`` says when it runs.
FIELDS: Final = (
    "task",
    "every",
    "cron",
    "at",
    "args",
    "kwargs",
    "options",
    "enabled",
    "policy",
    "tz",
)
WHEN: Final = ("every", "cron", "at")
ENTRIES: Final = "entries"
YAML_EXTRA: Final = "pip install 'redbeat[yaml]'"


class ApplyFileError(ValueError):
    """The file cannot be applied: it names the file and, when it is about one, the entry and
    the field, with what is accepted. Nothing has been written when it is raised."""

    def __init__(
        self, path: Path, problem: str, *, entry: str | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.entry = entry
        self.field = field
        self.problem = problem
        where = str(path)
        if entry is not None:
            where += f": entry {entry!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Wanted:
    """One entry as the file wants it."""

    name: str
    task: str
    #: A Celery schedule (interval, crontab or clocked).
    schedule: Any
    #: Which field gave it (``every``, ``cron`` or ``at``): what an error about it names.
    schedule_field: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    #: The scheduling policy the file sets (bounds as aware datetimes); a file's entry has
    #: exactly this policy, so a field it leaves out is the app's default.
    policy: dict[str, Any] = field(default_factory=dict)


def read_entries(path: Path) -> dict[str, Wanted]:
    """The entries of the file at ``path``, by name. Raises :class:`ApplyFileError`."""
    data = _load(path)
    if isinstance(data, list):
        raise ApplyFileError(
            path,
            f"a list, as `redbeat export` writes for `redbeat import`; apply takes a table "
            f"'{ENTRIES}' of entries by name",
        )
    if not isinstance(data, Mapping) or ENTRIES not in data:
        raise ApplyFileError(
            path,
            f"no '{ENTRIES}' table: the file holds a table of entries by name, "
            f"e.g. [{ENTRIES}.nightly] in TOML",
        )
    extra = sorted(str(key) for key in data if key != ENTRIES)
    if extra:
        raise ApplyFileError(path, f"unknown top-level key {extra[0]!r}: only '{ENTRIES}'")
    entries = data[ENTRIES]
    if not isinstance(entries, Mapping):
        raise ApplyFileError(path, f"'{ENTRIES}' must be a table of entries by name")
    wanted: dict[str, Wanted] = {}
    for name, fields in entries.items():
        if not isinstance(name, str):
            raise ApplyFileError(
                path, f"the entry name {name!r} is not a string (quote it in YAML)"
            )
        wanted[name] = _entry(path, name, fields)
    return wanted


def _load(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplyFileError(path, f"cannot be read: {exc}") from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ApplyFileError(path, f"not valid TOML: {exc}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ApplyFileError(path, f"not valid JSON: {exc}") from None
    if suffix in (".yaml", ".yml"):
        return _load_yaml(path, text)
    raise ApplyFileError(path, f"unknown format: the file name ends in one of {EXTENSIONS}")


def _load_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ApplyFileError(path, f"reading YAML needs PyYAML: {YAML_EXTRA}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ApplyFileError(path, f"not valid YAML: {exc}") from None


@dataclass(frozen=True)
class _Where:
    """The file and entry a problem is in."""

    path: Path
    entry: str

    def problem(self, field: str, text: str) -> ApplyFileError:
        return ApplyFileError(self.path, text, entry=self.entry, field=field)

    def bad(self, field: str, value: Any, accepted: str) -> ApplyFileError:
        return self.problem(field, f"{value!r}: {accepted}")


def _entry(path: Path, name: str, fields: Any) -> Wanted:
    if not isinstance(fields, Mapping):
        raise ApplyFileError(path, "a table of fields (task, and every, cron or at)", entry=name)
    where = _Where(path, name)
    unknown = sorted(str(key) for key in fields if key not in FIELDS)
    if unknown:
        raise where.problem(unknown[0], f"no such field; the fields are {', '.join(FIELDS)}")
    task = fields.get("task")
    if not isinstance(task, str) or not task:
        accepted = "the task's name, a non-empty string such as 'proj.tasks.add'"
        if task is None:
            raise where.problem("task", f"missing: {accepted}")
        raise where.bad("task", task, accepted)
    given = [key for key in WHEN if key in fields]
    if len(given) != 1:
        raise where.problem(
            "/".join(given or WHEN),
            f"give exactly one of every ({EVERY}), cron ({CRON}) or at ({ONCE}); "
            f"found {' and '.join(given) or 'none'}",
        )
    (when,) = given
    tz = fields.get("tz")
    if tz is not None and (when != "cron" or not isinstance(tz, str)):
        raise where.bad("tz", tz, "the time zone name of a cron schedule, such as 'Europe/Paris'")
    schedule = _schedule(where, when, fields[when], tz)
    args = fields.get("args", [])
    if not isinstance(args, list):
        raise where.bad("args", args, "a list of positional arguments")
    kwargs = _table(where, "kwargs", fields.get("kwargs", {}))
    options = _table(where, "options", fields.get("options", {}))
    enabled = fields.get("enabled", True)
    if not isinstance(enabled, bool):
        raise where.bad("enabled", enabled, "true or false")
    policy = _policy(where, _table(where, "policy", fields.get("policy", {})))
    return Wanted(name, task, schedule, when, list(args), kwargs, options, enabled, policy)


def _policy(where: _Where, table: dict[str, Any]) -> dict[str, Any]:
    """The ``policy`` table, its times read as ``at`` is (ISO 8601; without a zone, UTC).
    Each value is checked by ``Schedule.check`` as the entry API checks it."""
    unknown = sorted(key for key in table if key not in POLICY_FIELDS)
    if unknown:
        accepted = f"no such policy field; they are {', '.join(POLICY_FIELDS)}"
        raise where.problem(f"policy.{unknown[0]}", accepted)
    policy = dict(table)
    for bound in ("start_at", "end_at"):
        value = policy.get(bound)
        if isinstance(value, datetime):
            value = value.isoformat()
        if isinstance(value, str):
            try:
                policy[bound] = parse_moment(value)
            except ValueError as exc:
                raise where.problem(f"policy.{bound}", str(exc)) from None
    return policy


def _schedule(where: _Where, when: str, value: Any, tz: str | None = None) -> Any:
    """The schedule ``every``, ``cron`` or ``at`` gives, parsed as ``redbeat add`` parses it."""
    if when == "every":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.bad(when, value, EVERY)
        parse: Any = interval_of
    elif when == "cron":
        if not isinstance(value, str):
            raise where.bad(when, value, f"a string of {CRON}")
        parse = functools.partial(parse_cron, tz=tz)
    elif isinstance(value, datetime):  # TOML and YAML read times themselves
        value = value.isoformat()  # (without a zone: UTC, as for --at)
        parse = parse_once
    elif isinstance(value, date) or not isinstance(value, str):
        raise where.bad(when, value, ONCE)
    else:
        parse = parse_once
    try:
        return parse(value)
    except ValueError as exc:  # the parser's message names the value and what is accepted
        raise where.problem(when, str(exc)) from None


def _table(where: _Where, field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise where.bad(field, value, "a table (a JSON object) with string keys")
    return dict(value)
