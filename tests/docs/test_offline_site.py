"""The site's diagrams render with no network: the site serves Mermaid itself.

mkdocs-material turns each ```` ```mermaid ```` block into a diagram in the browser, with the
Mermaid library it finds on the page or, when there is none, one it fetches from a CDN. The
site ships its own copy (``docs/vendor/mermaid``, in ``extra_javascript``), so a site opened
from disk, offline or behind a firewall shows diagrams instead of their source. Tested for
real: the built site is opened from ``file://`` in headless Chromium (Debian's, driven by
Playwright) with every request outside ``file://`` aborted, and each diagram must become an
``<svg>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redbeat_test_support import SiteBuild, chromium

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
VENDOR = DOCS / "vendor" / "mermaid"
SCRIPT = "vendor/mermaid/mermaid.min.js"
#: Set it to a Chromium or Chrome binary to use that one instead of the one on PATH.
#: Diagrams render in well under a second; this is only the deadline of the poll.
RENDER_TIMEOUT_MS = 30_000
#: Shadow roots opened for the test: mkdocs-material puts each diagram in a *closed* one, which
#: no script (and no Playwright locator) can look into.
OPEN_SHADOW_ROOTS = """
const attachShadow = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attachShadow.call(this, { ...init, mode: "open" });
};
"""
RENDERED = """
(expected) => {
  const hosts = [...document.querySelectorAll("div.mermaid")];
  const svgs = hosts.map((host) => host.shadowRoot && host.shadowRoot.querySelector("svg"));
  return svgs.length === expected && svgs.every((svg) => svg && svg.getBBox().width > 0);
}
"""


def recorded() -> dict[str, str]:
    """The version and checksum ``docs/vendor/mermaid/README.md`` records."""
    text = (VENDOR / "README.md").read_text(encoding="utf-8")
    version = re.search(r"^- version: (\S+)$", text, re.M)
    checksum = re.search(r"^- sha256 of mermaid\.min\.js: ([0-9a-f]{64})$", text, re.M)
    assert version, "docs/vendor/mermaid/README.md lost its version line"
    assert checksum, "docs/vendor/mermaid/README.md lost its checksum line"
    return {"version": version[1], "sha256": checksum[1]}


def diagram_pages() -> dict[str, int]:
    """Each page with Mermaid diagrams (its path in the built site) and how many it has."""
    pages: dict[str, int] = {}
    for path in sorted(DOCS.rglob("*.md")):
        count = len(re.findall(r"^ *```mermaid$", path.read_text(encoding="utf-8"), re.M))
        if count and VENDOR not in path.parents:
            page = path.relative_to(DOCS).with_suffix("")
            built = "index.html" if page.name == "index" else f"{page.as_posix()}/index.html"
            pages[built] = count
    return pages


# ----------------------------------------------------------------------------- the vendored copy


def test_the_vendored_mermaid_is_the_recorded_release() -> None:
    facts = recorded()
    script = (VENDOR / "mermaid.min.js").read_bytes()
    assert hashlib.sha256(script).hexdigest() == facts["sha256"], (
        "docs/vendor/mermaid/mermaid.min.js is not the file its README records"
    )
    assert f'version:"{facts["version"]}"'.encode() in script
    assert "MIT License" in (VENDOR / "LICENSE").read_text(encoding="utf-8")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(rf"^extra_javascript:\n  - {re.escape(SCRIPT)}\n(?!  -)", config, re.M)


def test_the_vendored_major_version_is_the_one_mkdocs_material_loads() -> None:
    """mkdocs-material calls Mermaid's API as its own CDN copy has it: a new major version of
    either side shows here first."""
    material = pytest.importorskip("material")
    bundles = (Path(material.__file__).parent / "templates" / "assets" / "javascripts").glob(
        "bundle.*.min.js"
    )
    majors = {m for b in bundles for m in re.findall(r"/mermaid@(\d+)/", b.read_text("utf-8"))}
    assert majors == {recorded()["version"].split(".")[0]}


def test_the_built_site_carries_mermaid_and_its_licence(built_site: SiteBuild) -> None:
    assert built_site.returncode == 0, built_site.output
    for name in ("mermaid.min.js", "LICENSE"):
        assert (built_site.site / SCRIPT).with_name(name).read_bytes() == (
            VENDOR / name
        ).read_bytes()
    assert not list((built_site.site / SCRIPT).parent.glob("README*")), "the notes stay out"
    for page in diagram_pages():
        html = (built_site.site / page).read_text(encoding="utf-8")
        assert re.search(rf'<script src="(\.\./)*{re.escape(SCRIPT)}"', html), page


# ----------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system (Playwright never downloads a browser here). Every
    host name resolves to nothing, under the request blocking each page sets up."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--host-resolver-rules=MAP * ~NOTFOUND"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize(("page", "diagrams"), sorted(diagram_pages().items()))
def test_diagrams_render_offline(
    built_site: SiteBuild, browser: Any, page: str, diagrams: int
) -> None:
    assert built_site.returncode == 0, built_site.output
    context = browser.new_context()
    blocked: list[str] = []
    errors: list[str] = []

    def only_files(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    try:
        context.route("**/*", only_files)
        context.add_init_script(OPEN_SHADOW_ROOTS)
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto((built_site.site / page).as_uri())
        tab.wait_for_function(RENDERED, arg=diagrams, timeout=RENDER_TIMEOUT_MS)
        loaded = tab.evaluate("[...document.scripts].map((s) => s.src).filter(Boolean)")
    finally:
        context.close()
    assert not errors, errors
    assert any(src.startswith("file://") and src.endswith(SCRIPT) for src in loaded), loaded
    # The theme's web fonts are asked for and refused (the system's fonts stand in); Mermaid
    # must never be.
    assert not [url for url in blocked if "mermaid" in url], blocked
