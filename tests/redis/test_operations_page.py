"""docs/operations.md and docs/policies.md show real output: every command on each page runs here,
in order, as a reader would run it (the installed executables, on a terminal, in a folder
holding the files the page shows with a title), against a real server, and its output must match
the page's, times and counts of seconds aside."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from redbeat_test_support import on_a_terminal

DOCS = Path(__file__).parents[2] / "docs"
#: The pages whose commands run here, and how many commands each shows at least.
PAGES = {"operations.md": 10, "policies.md": 4}
BIN = Path(sys.executable).parent
#: The page's app names this storage; the test points it at its own server.
PAGE_URL = "redis://127.0.0.1:6379/1"
#: Wide enough that no table wraps (wrapping moves words between lines).
COLUMNS = 200


@pytest.fixture(scope="session")
def redbeat_server_kind() -> str:
    """One kind: the commands are the API's, tested on every kind elsewhere."""
    return "valkey"


def blocks(page: Path, kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", page.read_text("utf-8"), re.DOTALL)


def files(page: Path) -> list[tuple[str, str]]:
    """``(name, text)`` of every block with a title (```` ```toml title="schedule.toml" ````):
    the files the page's commands read, saved as a reader would save them."""
    found = re.findall(r'```\w+ title="([^"]+)"\n(.*?)```', page.read_text("utf-8"), re.DOTALL)
    return [(name, text) for name, text in found]


def examples(page: Path) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of every console block, in page order."""
    found: list[tuple[str, list[str]]] = []
    for block in blocks(page, "console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            else:
                found[-1][1].append(line)
    return found


def normalized(lines: list[str]) -> list[str]:
    """Lines without colours, with times as TIME, relative times as REL and runs of spaces as
    one (a column one digit wider shifts the others); every other number must match."""
    result = []
    for raw in lines:
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", raw)
        text = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?", "TIME", text)
        text = re.sub(r"in \d+(\.\d+)? (s|min|h|d|y)\b|\d+(\.\d+)? (s|min|h|d|y) ago", "REL", text)
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            result.append(text)
    return result


@pytest.mark.parametrize("page_name", sorted(PAGES))
def test_every_command_on_the_page_gives_the_output_shown(
    tmp_path: Path, redbeat_url: str, page_name: str
) -> None:
    page = DOCS / page_name
    (app_source,) = [b for b in blocks(page, "python") if "app = Celery(" in b]
    assert PAGE_URL in app_source
    (tmp_path / "proj.py").write_text(app_source.replace(PAGE_URL, redbeat_url))
    shown_files = files(page)
    assert len({name for name, _ in shown_files}) == len(shown_files), "one block per file"
    for name, text in shown_files:
        (tmp_path / name).write_text(text)
    env = dict(os.environ, COLUMNS=str(COLUMNS), NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    for name in ("REDBEAT_APP", "REDBEAT_URL", "TERM"):
        env.pop(name, None)
    ran = examples(page)
    assert len(ran) >= PAGES[page_name]
    for command, expected in ran:
        argv = shlex.split(command)
        assert argv[0] in ("redbeat", "celery"), command
        shown = on_a_terminal([str(BIN / argv[0]), *argv[1:]], tmp_path, env, COLUMNS)
        assert normalized(shown) == normalized(expected), f"$ {command}\n" + "\n".join(shown)
