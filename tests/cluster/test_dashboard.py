"""The dashboard on cluster: the same pages and actions as on one server (it only uses the
schedule API)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from celery import Celery

if not os.environ.get("CI"):
    pytest.importorskip("starlette", reason="the web extra: uv sync --extra web")

from redbeat_test_support import check_dashboard_on


def test_the_dashboard_lists_sorts_shows_and_pauses(
    make_cluster_app: Callable[..., Celery],
) -> None:
    check_dashboard_on(make_cluster_app())
