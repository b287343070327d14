"""Shared by the dashboard's tests. They need the ``web`` extra (Starlette, Jinja2, uvicorn):
each module skips without it (``pytest.importorskip``), except in CI, where the import fails
and so does the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def dashboard(make_app: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """``dashboard(**settings, auth=...)``: a TestClient on a dashboard of a new app on the
    test server (the app runs in this process, its storage is the real server)."""
    from starlette.testclient import TestClient

    from redbeat.web import Auth, create_app

    clients: list[Any] = []

    def make(auth: Auth | None = None, **settings: Any) -> Any:
        app = make_app(**settings)
        client = TestClient(create_app(app, auth))
        clients.append(client)
        client.celery_app = app
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()


def csrf(client: Any) -> dict[str, str]:
    """The header a change needs (its cookie is now in the client)."""
    return {"X-CSRF-Token": client.get("/api/csrf").json()["token"]}
