"""redbeat_core never imports a Redis client: a non-Redis backend must be able to stand on it.

The ``tests(core)`` nox session runs this with only ``redbeat-core`` installed; in the full
environment the subprocess hides ``redis`` and ``valkey`` to prove the same thing.
"""

from __future__ import annotations

import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import redbeat_core

CORE_SOURCES = Path(redbeat_core.__file__).parent
FORBIDDEN = {"redis", "valkey", "redbeat_redis"}
#: Words that name a Redis server or its topologies: the core serves every backend.
STORAGE_WORDS = re.compile(r"redis|valkey|sentinel", re.IGNORECASE)


def test_no_core_module_imports_a_redis_client() -> None:
    offenders = []
    for path in CORE_SOURCES.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in FORBIDDEN
            ]
    assert offenders == []


def test_every_core_module_imports_with_redis_unavailable() -> None:
    modules = [m.name for m in pkgutil.walk_packages([str(CORE_SOURCES)], prefix="redbeat_core.")]
    assert "redbeat_core.scheduler" in modules
    script = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {sorted(FORBIDDEN)!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"assert not any(m.split('.')[0] in {sorted(FORBIDDEN)!r} for m in sys.modules)\n"
        "print('ok', len(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_core_names_no_redis() -> None:
    """The core serves every backend: no Redis option, scheme, setting, server harness or
    docstring that takes Redis for granted. Redis servers, their fixtures and their settings
    live in ``redbeat_redis``. Every file is read, not only imports: a setting name or a
    docstring counts too (the Redis names go in the distributions that own them)."""
    files = sorted(
        path
        for path in CORE_SOURCES.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    names = {path.relative_to(CORE_SOURCES).as_posix() for path in files}
    assert {"scheduler.py", "config.py", "testing/contract.py", "testing/apps.py"} <= names
    hits = [
        f"{path.relative_to(CORE_SOURCES.parent)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if STORAGE_WORDS.search(line)
    ]
    assert hits == [], "redbeat_core names Redis:\n" + "\n".join(hits)
