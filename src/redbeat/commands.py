"""The schedule commands: ``redbeat list``, ``show``, ``next``, ``add``, ``edit``, ``delete``,
``enable``, ``disable``, ``pause``, ``resume``, ``quarantine``, ``lock``, ``doctor``,
``export``, ``import`` and ``apply``.

They are thin layers over :class:`redbeat.Schedule` and exist twice with the same code: in the
``redbeat`` command (``redbeat --app proj list``, or ``--url`` without an app) and as
``celery -A proj redbeat list`` (Celery finds :data:`celery_group` through its
``celery.commands`` entry point and passes its app).

Output: a table on a terminal (rich), plain tab-separated text when piped, JSON with
``--json``. Exit codes: 0 done, 1 a problem (no such entry, a value refused, the storage
unreachable), 2 a usage error.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from redbeat.schedule_text import parse_cron, parse_moment, parse_once
from redbeat_core import words
from redbeat_core.running import connect_worker_signals

F = TypeVar("F", bound=Callable[..., Any])

# Every `celery` command loads this module (its celery.commands entry point), `celery -A proj
# worker` included: such a worker records the runs of entries with an overlap policy
# (redbeat_core.running; off with redbeat_track_runs = False).
connect_worker_signals()

__all__ = ["SCHEDULE_COMMANDS", "app_options", "celery_group"]

#: Exit code for "a problem was found" (1); usage errors are click's 2.
PROBLEM = 1


# --------------------------------------------------------------------------- the app


class Target:
    """Which app the commands act on: Celery's (``celery -A proj redbeat``) or the one the
    ``redbeat`` options name. Resolved on first use, so ``--help`` imports nothing."""

    def __init__(self, app: Any = None, app_path: str | None = None, url: str | None = None):
        self._app = app
        self.app_path = app_path
        self.url = url

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = _load_app(self.app_path, self.url)
        return self._app


def _load_app(app_path: str | None, url: str | None) -> Any:
    from celery import Celery

    if app_path:
        from celery.app.utils import find_app

        try:
            app = find_app(app_path)
        except Exception as exc:  # what Celery raises for a bad -A is any import error
            raise click.UsageError(f"cannot load the Celery app {app_path!r}: {exc}") from exc
    else:
        app = Celery("redbeat-cli", set_as_current=False)
    if url:
        app.conf.redbeat_url = url
    elif not app_path:
        raise click.UsageError("say which schedule: --app proj.celery:app, or --url redis://...")
    return app


def app_options(command: F) -> F:
    """``--app`` and ``--url`` for the ``redbeat`` group."""
    command = click.option(
        "--url",
        envvar="REDBEAT_URL",
        metavar="URL",
        help="Storage URL (redis://..., sqlite://...) instead of, or over, the app's setting.",
    )(command)
    return click.option(
        "--app",
        "-A",
        "app_path",
        envvar="REDBEAT_APP",
        metavar="APP",
        help="The Celery app, as `celery -A` takes it (proj, proj.celery:app).",
    )(command)


def _target(ctx: click.Context) -> Target:
    root = ctx.find_root().obj
    if isinstance(root, Target):
        return root
    celery_app = getattr(root, "app", None)  # Celery's CLIContext
    if celery_app is not None:
        return Target(app=celery_app)
    raise click.UsageError("no Celery app: use celery -A proj redbeat ..., or redbeat --app")


def _schedule(ctx: click.Context) -> Any:
    from redbeat_core.catalog import Schedule

    return Schedule(_target(ctx).app)


def run_guarded(action: Callable[[], None]) -> None:
    """Run a command's body; RedBeat's own errors become one line and exit code 1."""
    from redbeat_core.exceptions import RedBeatError

    _escape_undecodable_output()
    try:
        action()
    except KeyError as exc:  # EntryNotFoundError, from_key's KeyError
        _fail(str(exc) if type(exc) is not KeyError else f"no entry {exc.args[0]!r}")
    except (RedBeatError, ValueError) as exc:
        _fail(str(exc))


def _escape_undecodable_output() -> None:
    """Print what cannot be encoded escaped rather than fail the command. A key another
    program wrote may hold bytes that are not UTF-8; its name keeps each as a lone surrogate
    (as Python keeps such file names) and is printed ``bad\\udcff``, as JSON and ``repr``
    show it. On the command line the raw bytes name it again (``$'bad\\xff'`` in bash)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _fail(message: str) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(PROBLEM)


# --------------------------------------------------------------------------- output


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _when(moment: datetime | None, tz: Any, now: datetime) -> str:
    """``2026-12-05 10:30:00 CET (09:30:00 UTC, in 3 min)``: the app's time zone (the one its
    crontabs are read in), UTC, and how far off; ``2026-12-05 09:30:00 UTC (in 3 min)`` when
    the app runs on UTC."""
    if moment is None:
        return "-"
    local = moment.astimezone(tz)
    relative = words.relative(moment - now)
    if local.utcoffset() == timedelta(0) and local.tzname() in ("UTC", "GMT", None):
        return f"{local:%Y-%m-%d %H:%M:%S} UTC ({relative})"
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({moment.astimezone(UTC):%H:%M:%S} UTC, {relative})"


def _last_run(info: Any, tz: Any, now: datetime) -> str:
    """The last run; "never" for an entry that has not run (Celery stamps a new entry's
    last run "now", which is not a run)."""
    return _when(info.last_run_at, tz, now) if info.total_run_count else "never"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal, tab-separated lines when piped."""
    if not sys.stdout.isatty():
        for row in rows:
            click.echo("\t".join(row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        # Times and names stay on one line; the schedule in words wraps if it must.
        table.add_column(
            header, no_wrap=header not in WRAPPING, min_width=12 * (header in WRAPPING)
        )
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _info_rows(infos: Sequence[Any], tz: Any) -> list[list[str]]:
    now = datetime.now(UTC)
    rows = []
    for info in infos:
        state = info.state.value + (f" ({info.reason})" if info.reason else "")
        rows.append(
            [
                info.name,
                info.task or "-",
                info.schedule_text,
                state,
                _when(info.next_run, tz, now),
                _last_run(info, tz, now),
                str(info.total_run_count),
            ]
        )
    return rows


HEADERS = ("NAME", "TASK", "SCHEDULE", "STATE", "NEXT RUN", "LAST RUN", "RUNS")
#: Columns that may wrap on a narrow terminal.
WRAPPING = frozenset({"SCHEDULE", "REASON", "ENTRIES", "DETAIL"})


# --------------------------------------------------------------------------- the commands


@click.command("list")
@click.option("--match", default="*", show_default=True, help="Names matching this glob.")
@click.option("--task", default=None, help="Only entries whose task matches this glob.")
@click.option(
    "--state",
    type=click.Choice(["scheduled", "paused", "disabled", "finished", "quarantined"]),
    default=None,
    help="Only entries in this state.",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@json_option
@click.pass_context
def list_entries(
    ctx: click.Context,
    match: str,
    task: str | None,
    state: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List stored entries: task, schedule in words, state, next and last run, run count."""

    def action() -> None:
        api = _schedule(ctx)
        infos = api.list(match=match, task=task, state=state, offset=offset, limit=limit)
        if as_json:
            _echo_json([info.to_json() for info in infos])
            return
        _table(HEADERS, _info_rows(infos, api.app.timezone))

    run_guarded(action)


@click.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Everything about one entry."""

    def action() -> None:
        api = _schedule(ctx)
        info = api.get(name)
        if as_json:
            _echo_json(info.to_json())
            return
        fields = info.to_json()
        now = datetime.now(UTC)
        fields["next_run"] = _when(info.next_run, api.app.timezone, now)
        fields["last_run_at"] = _last_run(info, api.app.timezone, now)
        if info.paused_at is None:  # shown only for a paused entry
            del fields["paused_by"], fields["paused_at"]
        else:
            fields["paused_at"] = _when(info.paused_at, api.app.timezone, now)
        fields["policy"] = _policy_text(info, api.app.timezone, now) or "(the app's defaults)"
        for key, value in fields.items():
            shown = json.dumps(value) if isinstance(value, list | dict) else str(value)
            click.echo(f"{key + ':':<17}{shown}")

    run_guarded(action)


def _policy_text(info: Any, tz: Any, now: datetime) -> str:
    """The entry's own policy fields, one ``field=value`` after the other."""
    parts = []
    for field, value in info.policy.items():
        shown = _when(value, tz, now) if isinstance(value, datetime) else f"{value}"
        if isinstance(value, list | tuple):
            shown = ",".join(value) or "none"
        if field in {"starting_deadline", "jitter"}:
            shown = f"{value:g}s"
        parts.append(f"{field}={shown}")
    return ", ".join(parts)


@click.command("next")
@click.argument("name")
@click.option("-n", "count", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@json_option
@click.pass_context
def next_runs(ctx: click.Context, name: str, count: int, as_json: bool) -> None:
    """The next run times of an entry, from its schedule."""

    def action() -> None:
        api = _schedule(ctx)
        runs = api.next_runs(name, count)
        if as_json:
            _echo_json([run.isoformat() for run in runs])
            return
        now = datetime.now(UTC)
        for run in runs:
            click.echo(_when(run, api.app.timezone, now))

    run_guarded(action)


def _schedule_from(
    every: float | None, cron: str | None, at: str | None, tz: str | None = None
) -> Any:
    """The schedule ``add``/``edit`` were given (exactly one of the three), or None."""
    given = [value is not None for value in (every, cron, at)]
    if sum(given) > 1:
        raise click.UsageError("give one of --every, --cron and --at")
    if tz is not None and cron is None:
        raise click.UsageError("--tz is the time zone of a --cron schedule")
    if every is not None:
        return every
    if cron is not None:
        try:
            return parse_cron(cron, tz)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--cron") from None
    if at is not None:
        try:
            return parse_once(at)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from None
    return None


def _json_value(text: str | None, what: str, kind: type) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=what) from None
    if not isinstance(value, kind):
        raise click.BadParameter(f"a JSON {'list' if kind is list else 'object'}", param_hint=what)
    return value


def _definition_options(command: F) -> F:
    for option in reversed(
        [
            click.option("--every", type=float, metavar="SECONDS", help="Run every N seconds."),
            click.option("--cron", metavar="'M H DoM MON DoW'", help="A crontab (app's zone)."),
            click.option("--tz", metavar="ZONE", help="The --cron's own time zone."),
            click.option("--at", metavar="ISO-TIME", help="Run once at this time."),
            click.option("--args", "args_json", metavar="JSON", help="Positional args, a list."),
            click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword args, a dict."),
            click.option("--options", "options_json", metavar="JSON", help="apply_async options."),
        ]
    ):
        command = option(command)
    return command


#: What the policy options take to put a field back to the app-wide default (``edit``).
DEFAULT_WORD: Final = "default"


def _policy_options(command: F) -> F:
    """The scheduling policy's fields (docs/policies.md), for ``add`` and ``edit``."""
    reset = f"; '{DEFAULT_WORD}': the app's default"
    for option in reversed(
        [
            click.option(
                "--misfire",
                type=click.Choice(["run_once", "skip", "run_all", DEFAULT_WORD]),
                help="After missed due times: run once, skip them, or run each" + reset + ".",
            ),
            click.option(
                "--starting-deadline",
                metavar="SECONDS",
                help="Skip a run that would start later than this after its due time" + reset,
            ),
            click.option(
                "--jitter", metavar="SECONDS", help="Delay each run by up to this" + reset
            ),
            click.option("--start", metavar="ISO-TIME", help="No run before this time."),
            click.option("--end", metavar="ISO-TIME", help="Finish the entry after this time."),
            click.option("--max-runs", metavar="N", help="Finish the entry after N runs."),
            click.option(
                "--overlap",
                type=click.Choice(["allow", "skip", "buffer_one", DEFAULT_WORD]),
                help="While the previous run is queued or running: publish anyway, skip, or "
                "keep one queued behind it" + reset + ".",
            ),
            click.option(
                "--blackout",
                "blackouts",
                multiple=True,
                metavar="CALENDAR",
                help="A blackout calendar it obeys (redbeat_calendars; repeat for more; 'none' "
                "for none" + reset + ").",
            ),
            click.option(
                "--blackout-action",
                type=click.Choice(["skip", "postpone", DEFAULT_WORD]),
                help="A run inside a blackout: skip it or postpone it to the end" + reset + ".",
            ),
        ]
    ):
        command = option(command)
    return command


def _policy_from(given: Mapping[str, Any]) -> dict[str, Any]:
    """The policy fields the options of ``add`` or ``edit`` set (their ``ctx.params``;
    ``default`` puts one back to the app's default)."""
    fields: dict[str, Any] = {}
    blackouts = tuple(given.get("blackouts") or ())
    if blackouts == (DEFAULT_WORD,):
        fields["blackouts"] = None
    elif blackouts == ("none",):
        fields["blackouts"] = []
    elif blackouts:
        fields["blackouts"] = list(blackouts)
    for option, field, parse in (
        ("misfire", "misfire", str),
        ("starting_deadline", "starting_deadline", float),
        ("jitter", "jitter", float),
        ("start", "start_at", parse_moment),
        ("end", "end_at", parse_moment),
        ("max_runs", "max_runs", int),
        ("overlap", "overlap", str),
        ("blackout_action", "blackout_action", str),
    ):
        text = given.get(option)
        if text is None:
            continue
        if text == DEFAULT_WORD:
            fields[field] = None
            continue
        try:
            fields[field] = parse(text)
        except ValueError as exc:
            hint = "--" + option.replace("_", "-")
            raise click.BadParameter(str(exc), param_hint=hint) from None
    return fields


@click.command("add")
@click.argument("name")
@click.argument("task")
@_definition_options
@_policy_options
@click.option("--disabled", is_flag=True, help="Store it disabled.")
@click.option("--replace", is_flag=True, help="Replace an entry of that name (runs kept).")
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    task: str,
    every: float | None,
    cron: str | None,
    tz: str | None,
    at: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    options_json: str | None,
    misfire: str | None,
    starting_deadline: str | None,
    jitter: str | None,
    start: str | None,
    end: str | None,
    max_runs: str | None,
    overlap: str | None,
    blackouts: tuple[str, ...],
    blackout_action: str | None,
    disabled: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Add an entry: NAME runs TASK on --every, --cron or --at, with an optional scheduling
    policy (--misfire, --starting-deadline, --jitter, --start, --end, --max-runs, --overlap,
    --blackout, --blackout-action)."""
    schedule = _schedule_from(every, cron, at, tz)
    if schedule is None:
        raise click.UsageError("say when it runs: --every SECONDS, --cron '0 3 * * *' or --at")
    args = _json_value(args_json, "--args", list) or []
    kwargs = _json_value(kwargs_json, "--kwargs", dict)
    options = _json_value(options_json, "--options", dict)
    policy = _policy_from(ctx.params) or None

    def action() -> None:
        info = _schedule(ctx).add(
            name,
            task,
            schedule,
            args=args,
            kwargs=kwargs,
            options=options,
            enabled=not disabled,
            replace=replace,
            policy=policy,
        )
        _done(info, as_json, f"added {name}")

    run_guarded(action)


@click.command("edit")
@click.argument("name")
@click.option("--task", default=None, help="Another task name.")
@_definition_options
@_policy_options
@json_option
@click.pass_context
def edit(
    ctx: click.Context,
    name: str,
    task: str | None,
    every: float | None,
    cron: str | None,
    tz: str | None,
    at: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    options_json: str | None,
    misfire: str | None,
    starting_deadline: str | None,
    jitter: str | None,
    start: str | None,
    end: str | None,
    max_runs: str | None,
    overlap: str | None,
    blackouts: tuple[str, ...],
    blackout_action: str | None,
    as_json: bool,
) -> None:
    """Change an entry's task, schedule, arguments or scheduling policy; its runs are
    kept."""
    changes: dict[str, Any] = {}
    schedule = _schedule_from(every, cron, at, tz)
    if schedule is not None:
        changes["schedule"] = schedule
    if task is not None:
        changes["task"] = task
    for field, text, kind in (
        ("args", args_json, list),
        ("kwargs", kwargs_json, dict),
        ("options", options_json, dict),
    ):
        value = _json_value(text, f"--{field}", kind)
        if value is not None:
            changes[field] = value
    policy = _policy_from(ctx.params)
    if policy:
        changes["policy"] = policy
    if not changes:
        raise click.UsageError(
            "nothing to change: give --task, a schedule, arguments or a policy option"
        )

    def action() -> None:
        _done(_schedule(ctx).update(name, **changes), as_json, f"changed {name}")

    run_guarded(action)


def _done(info: Any, as_json: bool, message: str) -> None:
    if as_json:
        _echo_json(info.to_json())
    else:
        click.echo(f"{message}: {info.state.value}, {info.schedule_text}")


@click.command("enable")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def enable(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Put disabled entries back in the schedule."""

    def action() -> None:
        api = _schedule(ctx)
        for name in names:
            click.echo(f"enabled {api.enable(name).name}")

    run_guarded(action)


@click.command("disable")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def disable(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Take entries out of the schedule, keeping them and their runs."""

    def action() -> None:
        api = _schedule(ctx)
        for name in names:
            click.echo(f"disabled {api.disable(name).name}")

    run_guarded(action)


@click.command("pause")
@click.argument("names", nargs=-1, required=True)
@click.option("--reason", "-r", required=True, help="Why (shown by list and show).")
@click.option("--by", default=None, help="Who pauses it (default: user@host).")
@click.pass_context
def pause(ctx: click.Context, names: tuple[str, ...], reason: str, by: str | None) -> None:
    """Take entries out of the schedule with a reason, until `resume`."""

    def action() -> None:
        api = _schedule(ctx)
        for name in names:
            info = api.pause(name, reason, by=by)
            click.echo(f"paused {info.name} ({info.paused_by}: {info.reason})")

    run_guarded(action)


@click.command("resume")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def resume(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Put paused entries back in the schedule (a run missed meanwhile happens once, now)."""

    def action() -> None:
        api = _schedule(ctx)
        now = datetime.now(UTC)
        for name in names:
            info = api.resume(name)
            click.echo(
                f"resumed {info.name}: next run {_when(info.next_run, api.app.timezone, now)}"
            )

    run_guarded(action)


@click.command("delete")
@click.argument("names", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, names: tuple[str, ...], yes: bool) -> None:
    """Delete entries (a static one comes back when a beat starts: remove it from
    beat_schedule)."""
    if not yes:
        click.confirm(f"Delete {', '.join(names)}?", abort=True)

    def action() -> None:
        api = _schedule(ctx)
        for name in names:
            api.delete(name)
            click.echo(f"deleted {name}")

    run_guarded(action)


@click.group("quarantine", invoke_without_command=True)
@json_option
@click.pass_context
def quarantine(ctx: click.Context, as_json: bool) -> None:
    """Entries the beat set aside, with the reason (restore one with `quarantine restore`)."""
    if ctx.invoked_subcommand is not None:
        return

    def action() -> None:
        found = _schedule(ctx).quarantine()
        if as_json:
            _echo_json(found)
        elif not found:
            click.echo("nothing is quarantined")
        else:
            _table(("NAME", "REASON"), [[name, reason] for name, reason in sorted(found.items())])

    run_guarded(action)


@quarantine.command("restore")
@click.argument("name")
@click.pass_context
def restore(ctx: click.Context, name: str) -> None:
    """Put a quarantined entry back in the schedule once it can run (fix it first)."""
    run_guarded(lambda: _done(_schedule(ctx).restore(name), False, f"restored {name}"))


@click.group("calendar", invoke_without_command=True)
@json_option
@click.pass_context
def calendar(ctx: click.Context, as_json: bool) -> None:
    """Blackout calendars: the declared (redbeat_calendars) and stored ones; store one with
    `calendar set`, delete it with `calendar delete`."""
    if ctx.invoked_subcommand is not None:
        return

    def action() -> None:
        found = _schedule(ctx).calendars()
        if as_json:
            _echo_json([info.to_json() for info in found])
        elif not found:
            click.echo("no blackout calendar is declared or stored")
        else:
            _table(("NAME", "SOURCE", "BLACKS OUT"), [[c.name, c.source, c.text] for c in found])

    run_guarded(action)


@calendar.command("set")
@click.argument("name")
@click.option("--cron", "crons", multiple=True, metavar="'M H DoM MON DoW'",
              help="Every minute this matches is blacked out (repeat for more).")  # fmt: skip
@click.option("--between", "ranges", nargs=2, multiple=True, metavar="START END",
              help="From START up to END, ISO 8601 times (repeat for more).")  # fmt: skip
@click.option("--tz", default=None, help="The time zone of both (default UTC).")
@click.pass_context
def calendar_set(
    ctx: click.Context,
    name: str,
    crons: tuple[str, ...],
    ranges: tuple[tuple[str, str], ...],
    tz: str | None,
) -> None:
    """Store the blackout calendar NAME (beats use it within 30 s)."""
    spec: dict[str, Any] = {}
    if crons:
        spec["cron"] = list(crons)
    if ranges:
        spec["between"] = [list(pair) for pair in ranges]
    if tz is not None:
        spec["tz"] = tz
    if not crons and not ranges:
        raise click.UsageError("say what it blacks out: --cron and/or --between")

    def action() -> None:
        info = _schedule(ctx).set_calendar(name, spec)
        click.echo(f"stored calendar {info.name}: {info.text}")

    run_guarded(action)


@calendar.command("delete")
@click.argument("name")
@click.pass_context
def calendar_delete(ctx: click.Context, name: str) -> None:
    """Delete the stored blackout calendar NAME."""

    def action() -> None:
        _schedule(ctx).delete_calendar(name)
        click.echo(f"deleted calendar {name}")

    run_guarded(action)


@click.command("run")
@click.argument("name")
@click.option("--by", default=None, help="Who asks (default: this user@host), for the history.")
@click.pass_context
def run_now(ctx: click.Context, name: str, by: str | None) -> None:
    """Run NAME once, now: the leading beat publishes it at its next tick (within a few
    seconds), outside its schedule, and records it in the history as a manual run."""

    def action() -> None:
        _schedule(ctx).run_now(name, by=by)
        click.echo(f"asked the leading beat to run {name} once, at its next tick")

    run_guarded(action)


def _limit_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-n/--limit``: how many of ``what`` a log command shows, newest first."""
    return click.option(
        "-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True,
        help=f"How many {what}, newest first.",
    )  # fmt: skip


def _print_log(
    records: Sequence[Any],
    as_json: bool,
    empty: str,
    headers: Sequence[str],
    row: Callable[[Any], list[str]],
) -> None:
    """A log's records (run history, audit): JSON, a line saying there are none, or a table."""
    if as_json:
        _echo_json([record.to_dict() for record in records])
    elif not records:
        click.echo(empty)
    else:
        _table(headers, [row(record) for record in records])


def _stamp(seconds: float, tz: Any) -> str:
    """Unix seconds as a time in the app's zone: ``2026-12-05 10:30:00 CET``."""
    return f"{datetime.fromtimestamp(seconds, UTC).astimezone(tz):%Y-%m-%d %H:%M:%S %Z}"


@click.command("history")
@click.argument("name", required=False)
@_limit_option("records")
@json_option
@click.pass_context
def history(ctx: click.Context, name: str | None, limit: int, as_json: bool) -> None:
    """What ran: each publish, failed publish, unsent and skipped run of NAME (of every entry
    without NAME), newest first, with its due time, lateness, task id and the beat (host:pid,
    fencing epoch) that did it."""

    def action() -> None:
        api = _schedule(ctx)
        if name is not None:
            api.get(name)  # an unknown name is an error, not an empty history
        empty = "no runs recorded yet"
        if not api.keeps_history:
            empty = "this schedule keeps no run history (see redbeat_history_total)"
        tz = api.app.timezone
        rows = functools.partial(_history_row, tz=tz)
        _print_log(api.history(name, limit), as_json, empty, HISTORY_HEADERS, rows)

    run_guarded(action)


HISTORY_HEADERS: Final = ("DUE", "ENTRY", "OUTCOME", "LATE", "TASK ID", "BEAT", "REASON")


def _history_row(record: Any, tz: Any) -> list[str]:
    outcome = record.outcome + (" (manual)" if record.manual else "")
    beat = f"{record.beat or '?'} #{record.epoch}" if record.epoch else (record.beat or "?")
    return [
        _stamp(record.due_at, tz),
        record.name,
        outcome,
        f"{record.lateness:+.3f} s",
        record.task_id or "-",
        beat,
        record.reason or "",
    ]


@click.command("audit")
@_limit_option("changes")
@json_option
@click.pass_context
def audit(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Who changed the schedule, how and when: every save, delete, pause, import, apply and
    beat start-up sync, newest first."""

    def action() -> None:
        api = _schedule(ctx)
        empty = "no changes recorded (see redbeat_audit_limit)"
        rows = functools.partial(_audit_row, tz=api.app.timezone)
        _print_log(api.audit(limit), as_json, empty, AUDIT_HEADERS, rows)

    run_guarded(action)


AUDIT_HEADERS: Final = ("WHEN", "BY", "ACTION", "ENTRIES", "DETAIL")


def _audit_row(record: Any, tz: Any) -> list[str]:
    names = ", ".join(record.names)
    if record.count > len(record.names):
        names += f" and {record.count - len(record.names)} more"
    return [_stamp(record.at, tz), record.by, record.action, names, record.detail or ""]


@click.command("lock")
@json_option
@click.pass_context
def lock(ctx: click.Context, as_json: bool) -> None:
    """Which beat leads (host:pid, since, fencing epoch), its lease left, and the standbys
    seen in the last minute. Exit code 1 when no beat holds the lock."""

    def action() -> None:
        status = _schedule(ctx).lock_status()
        if as_json:
            _echo_json(status.to_json())
        else:
            _print_lock(status)
        if not status.held:
            sys.exit(PROBLEM)

    run_guarded(action)


def _print_lock(status: Any) -> None:
    if not status.held:
        click.echo(f"no beat holds the lock {status.key} (last fencing epoch {status.epoch})")
    else:
        click.echo(f"leader:   {status.holder.describe()}")
        click.echo(f"lease:    {status.lease_left:.1f} s left on {status.key}")
    if status.standbys:
        for identity, ago in status.standbys:
            click.echo(f"standby:  {identity} (seen {ago:.1f} s ago)")
    else:
        click.echo("standbys: none seen in the last minute")


@click.command("doctor")
@json_option
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check what could stop or corrupt scheduling (the storage server, its eviction and
    persistence, clocks, the ACL user, the lock, the quarantine, statics and tasks), each
    with a verdict and the fix. Exit code 1 when a problem is found."""

    def action() -> None:
        from redbeat_core.doctor import Verdict, run_doctor

        findings = run_doctor(_target(ctx).app)
        if as_json:
            _echo_json([finding.to_json() for finding in findings])
        else:
            width = max((len(f.check) for f in findings), default=0)
            for finding in findings:
                mark = {"ok": "ok", "warning": "WARNING", "problem": "PROBLEM"}[finding.verdict]
                color = {"ok": "green", "warning": "yellow", "problem": "red"}[finding.verdict]
                head = click.style(f"{mark:<8}", fg=color, bold=finding.verdict != "ok")
                click.echo(f"{head} {finding.check:<{width}}  {finding.detail}")
                if finding.fix:
                    click.echo(f"{'':<8} {'':<{width}}  fix: {finding.fix}")
        if any(finding.verdict is Verdict.PROBLEM for finding in findings):
            sys.exit(PROBLEM)

    run_guarded(action)


@click.command("export")
@click.option("--output", "-o", type=click.File("w"), default="-", help="File (default: stdout).")
@click.pass_context
def export(ctx: click.Context, output: Any) -> None:
    """Write every entry (definition, runs, policy) as JSON, for `import`."""

    def action() -> None:
        exported = _schedule(ctx).export()
        json.dump(exported, output, indent=2)
        output.write("\n")
        if output is not sys.stdout and getattr(output, "name", "-") != "<stdout>":
            click.echo(f"exported {len(exported)} entries to {output.name}")

    run_guarded(action)


@click.command("import")
@click.argument("source", type=click.File("r"))
@click.option("--no-runs", is_flag=True, help="Start every entry afresh (drop run counts).")
@click.pass_context
def import_(ctx: click.Context, source: Any, no_runs: bool) -> None:
    """Store the entries of an `export` file (replacing entries of the same name). Every entry
    is checked before any is written; a big file shows a progress bar on a terminal."""

    def action() -> None:
        try:
            items = json.load(source)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="SOURCE") from None
        if not isinstance(items, list):
            raise click.BadParameter("a JSON list, as `redbeat export` writes", param_hint="SOURCE")
        from redbeat.progress import progress_bar
        from redbeat_core.catalog import CHUNK

        # A bar on a terminal when the import takes more than one write.
        with progress_bar("importing", len(items), more_than=CHUNK) as progress:
            count = _schedule(ctx).import_(items, keep_runs=not no_runs, progress=progress)
        click.echo(f"imported {count} entries")

    run_guarded(action)


@click.command("apply")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE"
)
@click.option("--prune", is_flag=True, help="Remove stored entries the file does not name.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@json_option
@click.pass_context
def apply(ctx: click.Context, file: Path, prune: bool, dry_run: bool, as_json: bool) -> None:
    """Make the stored schedule match FILE (.toml, .json, .yaml): add and change its entries,
    and with --prune remove the others (never static ones, from beat_schedule). Shows what
    differs first; every entry is checked before anything is written; runs and pauses are
    kept."""
    from redbeat.apply import EXTENSIONS

    if file.suffix.lower() not in EXTENSIONS:
        raise click.BadParameter(
            f"{str(file)!r}: a file ending in {', '.join(EXTENSIONS)}", param_hint="FILE"
        )

    def action() -> None:
        from redbeat.apply import (
            ApplyFileError,
            carry_out,
            check_entries,
            make_plan,
            plan_lines,
            print_lines,
            read_entries,
            summary,
        )
        from redbeat_core.exceptions import InvalidEntryError

        wanted = read_entries(file)
        api = _schedule(ctx)
        try:
            check_entries(api, wanted)
        except InvalidEntryError as exc:  # named as the file names it
            entry = wanted.get(str(exc.name))
            field = entry.schedule_field if entry and exc.field == "schedule" else exc.field
            raise ApplyFileError(file, exc.reason, entry=str(exc.name), field=field) from None
        plan = make_plan(wanted, api.entries(), prune=prune)
        if not as_json:
            print_lines(plan_lines(plan))
        if not dry_run:
            carry_out(api, plan, source=str(file))
        if as_json:
            _echo_json({**plan.to_json(), "written": plan.writes and not dry_run})
        else:
            click.echo(summary(plan, dry_run=dry_run))

    run_guarded(action)


from redbeat.web_command import web  # noqa: E402  (it imports this module's helpers lazily)

#: Every schedule command, in the order ``--help`` lists them.
SCHEDULE_COMMANDS: tuple[click.Command, ...] = (
    list_entries,
    show,
    next_runs,
    add,
    edit,
    enable,
    disable,
    pause,
    resume,
    delete,
    quarantine,
    calendar,
    run_now,
    history,
    audit,
    lock,
    doctor,
    export,
    import_,
    apply,
    web,
)


@click.group("redbeat")
def celery_group() -> None:
    """RedBeat's schedule: list, show, add, edit and remove entries of this app."""


for _command in SCHEDULE_COMMANDS:
    celery_group.add_command(_command)
