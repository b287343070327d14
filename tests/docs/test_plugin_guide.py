"""The plugin author's guide shows the blackout example's real code and real messages.

The walk-through in ``docs/plugins.md`` ("A plugin that skips runs and declares a setting")
quotes the example plugin (``examples/redbeat-blackout``) and its tests. A code block whose
first line is a comment naming a file of the repository (``# examples/.../settings.py``) must
be an unchanged excerpt of that file; the operator's configuration it shows must load; the
error and warning it quotes must be what RedBeat says. The plugin's page and README must
document every setting the plugin declares.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest

INSTALL_LINE = "uv pip install --python .venv/bin/python ./examples/redbeat-blackout"
if importlib.util.find_spec("redbeat_blackout") is None:
    if os.environ.get("CI"):
        pytest.fail(f"redbeat-blackout is not installed; run: {INSTALL_LINE}", pytrace=False)
    pytest.skip(f"redbeat-blackout is not installed; run: {INSTALL_LINE}", allow_module_level=True)

from celery import Celery  # noqa: E402
from redbeat_blackout import SETTINGS, Blackout, parse_windows  # noqa: E402

from redbeat_core import ConfigurationError, RedBeatConfig  # noqa: E402
from redbeat_core.plugins import BLOCK_ENV, DISABLE_AUTOLOAD_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
TITLE = "## A plugin that skips runs and declares a setting"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)


def walkthrough() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    assert TITLE in text, "the walk-through section is missing from docs/plugins.md"
    section = text.split(TITLE, 1)[1]
    return re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]


def blocks(lang: str) -> list[str]:
    """The walk-through's code blocks in ``lang``, dedented as a list item's are."""
    found = []
    for match in FENCE.finditer(walkthrough()):
        if match["lang"] == lang:
            indent = len(match["indent"])
            found.append("".join(line[indent:] for line in match["body"].splitlines(True)))
    return found


def quoted_files() -> list[tuple[str, str]]:
    """``(path, excerpt)`` for every block that names a file of the repository."""
    quoted = []
    for lang in ("python", "toml"):
        for body in blocks(lang):
            first, _, rest = body.partition("\n")
            path = first.removeprefix("# ").strip()
            if first.startswith("# ") and (ROOT / path).is_file():
                quoted.append((path, rest))
    return quoted


def test_every_quoted_block_is_the_files_code() -> None:
    quoted = quoted_files()
    files = {path for path, _ in quoted}
    assert files >= {
        "examples/redbeat-blackout/pyproject.toml",
        "examples/redbeat-blackout/src/redbeat_blackout/settings.py",
        "examples/redbeat-blackout/src/redbeat_blackout/policy.py",
        "examples/redbeat-blackout/src/redbeat_blackout/plugin.py",
        "tests/plugins/test_blackout_example.py",
    }
    stale = [
        path for path, excerpt in quoted if excerpt not in (ROOT / path).read_text(encoding="utf-8")
    ]
    assert not stale, f"the guide quotes code that is no longer in {stale}: copy it again"


def test_the_quoted_check_can_fail() -> None:
    """An edited excerpt is not found in its file (the check above is not vacuous)."""
    path, excerpt = quoted_files()[0]
    assert excerpt.replace("def ", "def  ", 1) not in (ROOT / path).read_text(encoding="utf-8")


@pytest.fixture
def plugin_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An app with the plugin named by import path (no connection is opened)."""
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    apps: list[Celery] = []

    def make(**conf: Any) -> Celery:
        app = Celery("guide", set_as_current=False)
        app.conf.update(
            broker_url="memory://",
            redbeat_url="redis://127.0.0.1:1/0",
            redbeat_plugins=["redbeat_blackout.plugin"],
            **conf,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def test_the_operators_configuration_loads(plugin_app: Any) -> None:
    (config_block,) = {b for b in blocks("python") if b.startswith("# celeryconfig.py")}
    conf: dict[str, Any] = {}
    exec(config_block, conf)  # the guide's own configuration file
    conf = {k: v for k, v in conf.items() if k.startswith("redbeat_")}
    assert set(conf) == {s.name for s in SETTINGS}
    blackout = Blackout.from_settings(RedBeatConfig.from_app(plugin_app(**conf)).settings)
    assert blackout.enabled
    assert (str(blackout.zone), blackout.action) == ("Europe/Paris", "skip")
    assert blackout.windows == parse_windows(["22:00-06:00"])


def test_the_quoted_error_and_warning_are_what_redbeat_says(
    plugin_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    texts = blocks("text")
    error = next(t for t in texts if t.startswith("invalid setting"))
    value = re.match(r"invalid setting redbeat_blackout_windows=(\S+):", error)
    assert value is not None
    with pytest.raises(ConfigurationError) as info:
        RedBeatConfig.from_app(
            plugin_app(
                redbeat_blackout_windows=value[1].strip("'"),
                redbeat_blackout_entries=["maint-*"],
            )
        )
    assert str(info.value) == error.strip()

    warning = next(t for t in texts if t.startswith("RedBeat: the setting"))
    with caplog.at_level(logging.WARNING, "celery.beat"):
        from redbeat_core.runtime import get_runtime

        get_runtime(plugin_app(redbeat_blackout_window=["22:00-06:00"]))
    assert warning.strip() in [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    "page", ["docs/plugins/blackout.md", "examples/redbeat-blackout/README.md"]
)
def test_every_setting_is_documented(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    rows = {m[1] for m in re.finditer(r"^\| `(redbeat_blackout_\w+)` \|", text, re.M)}
    assert rows == {setting.name for setting in SETTINGS}
