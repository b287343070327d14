"""The plugin manager: loading (entry points, settings, env switches), validation, isolation.

Entry-point plugins are real distributions: a ``.dist-info`` folder written to a temporary
directory on ``sys.path``, found by ``importlib.metadata`` like any installed package.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

from redbeat_core import hookimpl
from redbeat_core.config import RedBeatConfig
from redbeat_core.exceptions import DuplicateBackendError, PluginError, UnknownBackendError
from redbeat_core.locks import NullLock
from redbeat_core.plugins import PluginManager
from redbeat_core.registry import BackendRegistry


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A distribution ``acme-beat-plugin`` with an entry point ``acme`` in group ``redbeat``."""
    (tmp_path / "acme_plugin.py").write_text(
        textwrap.dedent(
            """
            from redbeat_core import hookimpl
            calls = []

            @hookimpl
            def redbeat_tick(scheduler, leader, due, next_wake):
                calls.append(due)
            """
        )
    )
    dist = tmp_path / "acme_beat_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-beat-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[redbeat]\nacme = acme_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("REDBEAT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("REDBEAT_BLOCK_PLUGINS", raising=False)
    return "acme-beat-plugin:acme"


def test_entry_point_plugins_load_and_run(installed_plugin: str) -> None:
    manager = PluginManager.load()
    assert manager.pm.has_plugin(installed_plugin)
    manager.tick(scheduler=object(), leader=True, due=3, next_wake=1.0)  # type: ignore[arg-type]
    import acme_plugin  # type: ignore[import-not-found]

    assert acme_plugin.calls == [3]


def test_autoload_can_be_disabled(installed_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDBEAT_DISABLE_PLUGIN_AUTOLOAD", "1")
    manager = PluginManager.load()
    assert not manager.pm.has_plugin(installed_plugin)
    assert manager.pm.has_plugin("redbeat.defaults")


def test_a_named_plugin_can_be_blocked(
    installed_plugin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDBEAT_BLOCK_PLUGINS", "acme")
    assert not PluginManager.load().pm.has_plugin(installed_plugin)


def test_plugins_setting_loads_import_paths(installed_plugin: str) -> None:
    manager = PluginManager.load(("acme_plugin",), autoload=False)
    assert manager.pm.has_plugin("acme_plugin")


def test_a_bad_import_path_names_the_setting_and_path() -> None:
    with pytest.raises(PluginError, match=r"'no_such_module_x' from redbeat_plugins"):
        PluginManager.load(("no_such_module_x",), autoload=False)


class Misspelled:
    @hookimpl
    def redbeat_tik(self, scheduler: Any) -> None: ...


def test_a_misspelled_hook_fails_naming_plugin_and_hook() -> None:
    manager = PluginManager()
    manager.register(Misspelled(), name="misspelled-plugin")
    with pytest.raises(PluginError) as info:
        manager.check_pending()
    assert "misspelled-plugin" in str(info.value)
    assert "redbeat_tik" in str(info.value)


class Exploding:
    @hookimpl
    def redbeat_tick(self, scheduler: Any, due: int) -> None:
        raise RuntimeError("boom")


class Recording:
    def __init__(self) -> None:
        self.seen: list[int] = []

    @hookimpl
    def redbeat_tick(self, due: int) -> None:
        self.seen.append(due)


def test_a_raising_observer_is_logged_once_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = PluginManager()
    recorder = Recording()
    manager.register(Exploding(), name="exploding")
    manager.register(recorder, name="recorder")
    with caplog.at_level(logging.DEBUG, logger="celery.beat"):
        for due in (1, 2):
            manager.tick(scheduler=object(), leader=True, due=due, next_wake=0.0)  # type: ignore[arg-type]
    assert recorder.seen == [1, 2]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "exploding" in errors[0].getMessage()
    assert "redbeat_tick" in errors[0].getMessage()


def test_unimplemented_hooks_are_reported_as_such() -> None:
    manager = PluginManager()
    assert not manager.after_dispatch
    assert not manager.tick
    manager.register(Recording(), name="recorder")
    assert manager.tick
    assert not manager.after_dispatch


class CustomLock:
    @hookimpl
    def redbeat_make_lock(self, config: RedBeatConfig, backend: Any) -> Any:
        return NullLock()


def test_a_plugin_lock_wins_over_the_trylast_default() -> None:
    manager = PluginManager.load(autoload=False)
    manager.register(CustomLock(), name="custom-lock")

    class NoBackend:
        def make_lock(self, config: RedBeatConfig) -> Any:
            raise AssertionError("the default must not be asked when a plugin answers")

    assert isinstance(manager.make_lock(RedBeatConfig(), NoBackend()), NullLock)  # type: ignore[arg-type]


def test_registry_rejects_a_scheme_claimed_twice() -> None:
    registry = BackendRegistry()
    registry.register("x", lambda config, app: None, owner="first-plugin")  # type: ignore[arg-type,return-value]
    with pytest.raises(DuplicateBackendError, match="first-plugin and second-plugin"):
        registry.register("x", lambda config, app: None, owner="second-plugin")  # type: ignore[arg-type,return-value]


def test_an_unknown_scheme_names_what_provides_it() -> None:
    registry = BackendRegistry()
    registry.hint("mystore", "the plugin redbeat-mystore")
    with pytest.raises(UnknownBackendError) as info:
        registry.create(RedBeatConfig(url="mystore://:s3cret@h:1"), app=None)
    message = str(info.value)
    assert "no installed backend handles 'mystore://'" in message
    assert "Install the plugin redbeat-mystore." in message
    assert "redbeat_url" in message
    assert "s3cret" not in message


def test_an_unknown_scheme_without_a_hint_says_what_to_do() -> None:
    with pytest.raises(UnknownBackendError, match="Install the plugin that provides it"):
        BackendRegistry().create(RedBeatConfig(url="memcached://h"), app=None)


def test_hook_arguments_are_typed_and_their_types_exported() -> None:
    """No hook argument is typed ``Any``, and every RedBeat type a hook receives can be
    imported from ``redbeat_core`` (where plugin authors look)."""
    import inspect
    import re

    import redbeat_core
    from redbeat_core import hookspecs

    outside = {"Celery", "Sequence", "None", "BaseException", "str", "int", "float", "bool"}
    for name, spec in vars(hookspecs).items():
        if not name.startswith("redbeat_") or not callable(spec):
            continue
        for param in inspect.signature(spec).parameters.values():
            annotation = str(param.annotation)
            assert "Any" not in annotation, f"{name}({param.name}: {annotation})"
            for word in re.findall(r"[A-Za-z_]\w*", annotation):
                if word not in outside:
                    assert hasattr(redbeat_core, word), f"{name}: {word} not in redbeat_core"
