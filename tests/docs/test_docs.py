"""The documentation site is complete and true to the code (datasette's ``test_docs`` style).

The generated parts are read through ``docs/_generate.py``, the functions the MkDocs hook
calls, so these tests check what the site shows. The strict build itself runs when MkDocs is
installed (``nox -s docs`` and CI install it; elsewhere that test is skipped).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import pluggy
import pytest
from redbeat_test_support import SiteBuild

from redbeat_core import hookspecs
from redbeat_core.planning import DUE_AT_HEADER
from redbeat_core.plugins import BLOCK_ENV, DISABLE_AUTOLOAD_ENV
from redbeat_core.running import ENTRY_HEADER
from redbeat_core.runtime import CONF_ATTRIBUTE, RUNTIME_ATTRIBUTE
from redbeat_redis.testing import pytest_plugin

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _load_generate() -> ModuleType:
    path = DOCS / "_generate.py"
    spec = importlib.util.spec_from_file_location("redbeat_docs_generate_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
    return module


generate = _load_generate()
SETTINGS = generate.declared_settings()
ROWS = generate.setting_rows(SETTINGS)


def hookspecs_by_name() -> dict[str, pluggy.HookCaller]:
    """Every hookspec, as pluggy itself sees them (not through the generator)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return {
        name: caller
        for name, caller in vars(pm.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.has_spec()
    }


def hook_sections(reference: str) -> dict[str, str]:
    """The hook reference cut into one section per ``### `hook` `` heading."""
    parts = re.split(r"^### `(redbeat_[a-z_]+)`$", reference, flags=re.MULTILINE)
    return {
        name: re.split(r"^## ", body, flags=re.MULTILINE)[0]
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    """Every page as the site shows it (markers replaced)."""
    found: dict[str, str] = generate.rendered_pages(DOCS)
    assert "index.md" in found
    return found


# ----------------------------------------------------------------------------- hook reference


def test_every_hookspec_is_in_the_hook_reference(pages: dict[str, str]) -> None:
    specs = hookspecs_by_name()
    assert "redbeat_make_lock" in specs, "the hookspecs were found"
    assert generate.block("hooks").search((DOCS / "hooks.md").read_text(encoding="utf-8"))
    sections = hook_sections(pages["hooks.md"])
    missing = sorted(set(specs) - set(sections))
    assert not missing, f"hookspecs missing from the hook reference (hooks.md): {missing}"
    assert not set(sections) - set(specs), "the reference shows a hook that has no spec"


def test_every_hook_argument_is_documented() -> None:
    sections = hook_sections(generate.hooks_markdown())
    for name, caller in hookspecs_by_name().items():
        assert caller.spec is not None
        for arg in caller.spec.argnames:
            assert f"- `{arg}`: " in sections[name], (
                f"{name}: argument {arg!r} has no ':param {arg}:' line in its docstring"
            )
        assert f"def {name}(" in sections[name], f"{name}: signature missing"


def test_reference_shows_firstresult_and_historic_as_the_spec_says() -> None:
    sections = hook_sections(generate.hooks_markdown())
    for name, caller in hookspecs_by_name().items():
        assert caller.spec is not None
        opts = caller.spec.opts
        text = sections[name]
        assert ("**firstresult**" in text) == bool(opts.get("firstresult")), name
        assert ("**historic**" in text) == bool(opts.get("historic")), name
        # A docstring that claims an option the spec lacks would contradict the badge.
        if not opts.get("firstresult"):
            assert "Stops at first non-None result" not in text, name
        if not opts.get("historic"):
            assert "Historic:" not in text, name


def test_hooks_are_grouped_as_in_the_module() -> None:
    groups = generate.hook_groups()
    titles = [g.title for g in groups]
    assert titles == [
        "Registration",
        "Strategies",
        "Decisions",
        "Lifecycle observers",
        "Operations",
    ]
    source_order = sorted(
        hookspecs_by_name(),
        key=lambda name: inspect.getsourcelines(getattr(hookspecs, name))[1],
    )
    assert [h.name for g in groups for h in g.hooks] == source_order


def _owned_by_a_plugin(name: str) -> bool:
    """A plugin's own names: its settings (``redbeat_<plugin>_*``, where ``redbeat_<plugin>`` is
    its package) and the metric series the Prometheus plugin exports."""
    package = "_".join(name.split("_")[:2])
    if package != name and importlib.util.find_spec(package) is not None:
        return True
    try:
        import redbeat_prometheus
    except ImportError:  # pragma: no cover - installed wherever the docs tests run
        return False
    metrics = set(redbeat_prometheus.METRIC_NAMES)
    return name in metrics or name.rsplit("_", 1)[0] in metrics


def test_docs_name_only_hooks_that_exist(pages: dict[str, str]) -> None:
    """Any ``redbeat_*`` name on a page that is not a setting, a module, a fixture or an
    attribute RedBeat keeps on the Celery app (celery-redbeat's ``app.redbeat_conf``) must be a
    hookspec: a renamed or removed hook fails here until the docs follow."""
    hooks = set(hookspecs_by_name())
    settings = {part for s in ROWS for part in re.findall(r"\w+", s.name)}
    fixtures = {name for name in pytest_plugin.__all__ if name.startswith("redbeat_")}
    app_attributes = {CONF_ATTRIBUTE, RUNTIME_ATTRIBUTE}  # app.redbeat_conf, app.redbeat_runtime
    app_attributes.add(DUE_AT_HEADER)  # a message header, read as task.request.redbeat_due_at
    app_attributes.add(ENTRY_HEADER)  # the header naming a run's entry (overlap policies)
    wrong: dict[str, list[str]] = {}
    for page, text in pages.items():
        for name in sorted(set(re.findall(r"(?<![\w-])redbeat_[a-z_]+\b", text))):
            if name in hooks or name in settings or name in fixtures or name in app_attributes:
                continue
            if importlib.util.find_spec(name) is not None:  # redbeat_core, redbeat_redis, ...
                continue
            if _owned_by_a_plugin(name):
                continue
            wrong.setdefault(page, []).append(name)
    assert not wrong, f"pages name hooks that do not exist: {wrong}"


# ----------------------------------------------------------------------------- configuration


def test_every_setting_is_in_the_configuration_page(pages: dict[str, str]) -> None:
    assert generate.block("settings").search((DOCS / "configuration.md").read_text("utf-8"))
    owners = {s.owner for s in SETTINGS}
    assert owners == {"redbeat-core", "redbeat-redis", "redbeat-prometheus"}
    rows = {
        match[1]: line
        for line in pages["configuration.md"].splitlines()
        if (match := re.search(r"\{#([\w-]+)\}", line)) and line.startswith("|")
    }
    for setting in ROWS:
        row = rows.get(generate.setting_anchor(setting.name))
        assert row is not None, f"{setting.name} is missing from the configuration page"
        for part in re.findall(r"\w+", setting.name):
            assert f"`{part}`" in row, f"{setting.name}: {part} not shown in its row"
        assert f"`{setting.type or 'str'}`" in row, f"{setting.name}: type not shown"
    assert len(rows) == len(ROWS), "one row per setting, anchors unique"


def test_the_committed_references_are_what_the_code_generates() -> None:
    """The hook and settings references are committed as Markdown (readable in a checkout);
    they must be what the code generates now."""
    stale = generate.stale_pages(DOCS)
    assert stale == [], f"stale generated docs {stale}: run python docs/_generate.py"


def test_a_changed_declaration_makes_the_page_stale(tmp_path: Path) -> None:
    """The staleness check can fail: an edited block is found, and writing mends it."""
    for page in ("configuration.md", "hooks.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        (tmp_path / page).write_text(text.replace("| `", "| `x", 1), encoding="utf-8")
    assert generate.stale_pages(tmp_path) == ["configuration.md", "hooks.md"]
    assert generate.write(tmp_path) == ["configuration.md", "hooks.md"]
    assert generate.stale_pages(tmp_path) == []


def test_plugin_environment_variables_are_documented(pages: dict[str, str]) -> None:
    for page in ("configuration.md", "plugins.md"):
        assert DISABLE_AUTOLOAD_ENV in pages[page], page
        assert BLOCK_ENV in pages[page], page


# ----------------------------------------------------------------------------- the real build


def test_site_builds_strict(built_site: SiteBuild) -> None:
    assert built_site.returncode == 0, built_site.output
    site = built_site.site
    hooks_html = (site / "hooks" / "index.html").read_text(encoding="utf-8")
    for name in hookspecs_by_name():
        assert f'id="{name}"' in hooks_html, f"{name} not in the built hook reference"
    config_html = (site / "configuration" / "index.html").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f'id="{generate.setting_anchor(setting.name)}"' in config_html, setting.name
    assert not list(site.rglob("*.py")), "the hook's Python files are not published"
