"""Every setting is declared by its owner, and RedBeat's own are documented in the README.

Settings are read only through their declarations (``redbeat_core.settings``): a module that
read ``app.conf["redbeat_..."]`` by itself would bypass the checks, the misspelling warning
and the reference, so a scan of every shipped package forbids it.
"""

from __future__ import annotations

import re
from pathlib import Path

from redbeat_core.plugins import PluginManager
from redbeat_core.settings import CORE_OWNER

ROOT = Path(__file__).resolve().parents[2]
#: Owners whose settings the README's configuration table lists (when they are installed).
README_OWNERS = {CORE_OWNER, "redbeat-redis"}
PACKAGES = [
    ROOT / "src",
    *ROOT.glob("redbeat_*/src"),
    *ROOT.glob("examples/*/src"),
]
#: ``conf.get("redbeat_x")``, ``conf["REDBEAT_X"]``, ``conf.first("redbeat_x", ...)``.
DIRECT_READ = re.compile(r"""conf(?:\.get|\.first)?[\[(]\s*["'](?:redbeat|REDBEAT)_""")


def test_every_declared_setting_of_redbeat_is_in_the_readme() -> None:
    registry = PluginManager.load().settings_registry()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ours = [s for s in registry if s.owner in README_OWNERS]
    assert any(s.name == "redbeat_lock_timeout" for s in ours), "the scan found the settings"
    missing = [s.name for s in ours if f"`{s.name}`" not in readme]
    assert missing == [], f"declared but not in README.md: {missing}"


def test_no_module_reads_a_redbeat_setting_behind_the_declarations() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in package.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if DIRECT_READ.search(line)
    ]
    assert offenders == []
