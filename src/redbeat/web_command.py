"""``redbeat web`` and ``celery -A proj redbeat web``: serve the dashboard with uvicorn.

Kept apart from :mod:`redbeat.web` so that ``redbeat --help`` imports neither Starlette nor
uvicorn; without the ``web`` extra the command says what to install.
"""

from __future__ import annotations

import sys

import click

__all__ = ["web"]

#: What to install when the extra is missing.
WEB_EXTRA = "pip install 'redbeat[web]' (in a checkout: uv sync --extra web)"


@click.command("web")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="REDBEAT_WEB_HOST",
    help="Address to listen on. Beyond the loopback a token or basic auth is needed.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    envvar="REDBEAT_WEB_PORT",
    help="Port to listen on.",
)
@click.option(
    "--root-path",
    default="",
    envvar="REDBEAT_WEB_ROOT_PATH",
    metavar="PREFIX",
    help="The path prefix a reverse proxy serves the dashboard under (/redbeat).",
)
@click.option(
    "--token",
    envvar="REDBEAT_WEB_TOKEN",
    metavar="TOKEN",
    help="Require this token (a bearer header, or typed in on the login page). "
    "Prefer the environment variable REDBEAT_WEB_TOKEN: arguments show in ps.",
)
@click.option(
    "--user",
    envvar="REDBEAT_WEB_USER",
    metavar="NAME",
    help="Require HTTP basic auth with this user name (and REDBEAT_WEB_PASSWORD).",
)
@click.option(
    "--password",
    envvar="REDBEAT_WEB_PASSWORD",
    metavar="PASSWORD",
    help="The basic auth password; prefer the environment variable REDBEAT_WEB_PASSWORD.",
)
@click.option(
    "--read-only",
    is_flag=True,
    envvar="REDBEAT_WEB_READ_ONLY",
    help="Show everything, change nothing.",
)
@click.option(
    "--refresh",
    type=click.FloatRange(min=0.5),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How often the pages refresh their data.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.pass_context
def web(
    ctx: click.Context,
    host: str,
    port: int,
    root_path: str,
    token: str | None,
    user: str | None,
    password: str | None,
    read_only: bool,
    refresh: float,
    log_level: str,
) -> None:  # fmt: skip
    """Serve the dashboard: every entry with its state and next run, its history and next
    runs, the beats' leader, and actions (pause, resume, run now, edit, delete).

    Listens on 127.0.0.1:8765 by default; another address needs a token (REDBEAT_WEB_TOKEN)
    or basic auth (REDBEAT_WEB_USER, REDBEAT_WEB_PASSWORD). Needs the web extra.
    """
    from redbeat.commands import _target, run_guarded

    try:
        import uvicorn

        from redbeat.web import Auth, BindRefusedError, check_bind, create_app
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs the web extra: {WEB_EXTRA} ({exc})"
        ) from None
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise click.BadParameter(
            f"{root_path!r}: a path starting with / and not ending with one, such as /redbeat",
            param_hint="--root-path",
        )
    try:
        auth = Auth(token=token, username=user, password=password, read_only=read_only)
        check_bind(host, auth)
    except BindRefusedError as exc:
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    def action() -> None:
        from redbeat_core.masking import mask_url
        from redbeat_core.runtime import get_runtime

        app = _target(ctx).app
        config = get_runtime(app).config  # a bad URL or setting fails here, before listening
        dashboard = create_app(app, auth, refresh=refresh)
        shown = f"http://{host if ':' not in host else f'[{host}]'}:{port}{root_path}/"
        click.echo(f"RedBeat dashboard for {mask_url(config.url)} on {shown}", err=True)
        server = uvicorn.Server(
            uvicorn.Config(
                dashboard,
                host=host,
                port=port,
                root_path=root_path,
                log_level=log_level,
                proxy_headers=True,
                server_header=False,
            )
        )
        server.run()
        if not server.started:
            sys.exit(1)

    run_guarded(action)
