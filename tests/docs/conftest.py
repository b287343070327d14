"""Fixtures of the docs tests: the site is built once per test session for all of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from redbeat_test_support import SiteBuild, build_site

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> SiteBuild:
    """The repository's site, built with ``mkdocs build --strict`` into a temporary folder.
    Skipped where MkDocs is not installed (``nox -s docs``, ``tests(redis)`` and CI have it)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    return build_site(ROOT / "mkdocs.yml", tmp_path_factory.mktemp("docs") / "site")
