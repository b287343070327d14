"""Every setting the config reads is documented, in SETTINGS (the docs' source) and the README."""

from __future__ import annotations

import re
from pathlib import Path

import redbeat_core.config as config_module
from redbeat_core.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def settings_read_by_the_code() -> set[str]:
    source = Path(config_module.__file__).read_text(encoding="utf-8")
    code = source.split("def _positive_number", 1)[1]  # skip the SETTINGS table itself
    return set(re.findall(r'"((?:redbeat|beat)_[a-z_]+)"', code)) - {"redbeat_conf"}


def test_every_setting_read_is_in_the_settings_table() -> None:
    documented = {s.name.split("[")[0] for s in SETTINGS}
    read = settings_read_by_the_code()
    assert read, "the scan found the settings"
    assert read <= documented, f"undocumented: {sorted(read - documented)}"


def test_every_documented_setting_is_real_and_in_the_readme() -> None:
    read = settings_read_by_the_code()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        base = setting.name.split("[")[0]
        assert base in read, f"{base} is documented but never read"
        assert f"`{base}`" in readme or f"`{setting.name}`" in readme, f"{base} not in README"
