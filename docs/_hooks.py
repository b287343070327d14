"""MkDocs hook (``hooks:`` in mkdocs.yml): fills in the generated parts of the site.

The content comes from ``docs/_generate.py``, plain functions that the docs tests import too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def _load_generate() -> ModuleType:
    path = Path(__file__).with_name("_generate.py")
    spec = importlib.util.spec_from_file_location("redbeat_docs_generate", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file sits beside this one
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)  # no __pycache__ inside docs/
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
    return module


_generate = _load_generate()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the markers (settings table, hook reference) in a page."""
    return str(_generate.render(markdown, Path(config["docs_dir"])))
