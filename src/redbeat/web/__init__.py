"""RedBeat's web dashboard: ``redbeat web`` (or ``celery -A proj redbeat web``).

Needs the ``web`` extra (Starlette, Jinja2, uvicorn, python-multipart). Nothing here is
imported by the scheduler or the other commands.
"""

from __future__ import annotations

from redbeat.web.app import create_app
from redbeat.web.security import Auth, BindRefusedError, check_bind

__all__ = ["Auth", "BindRefusedError", "check_bind", "create_app"]
