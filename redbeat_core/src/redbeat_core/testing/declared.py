"""Declared fixtures and capability flags: how a contract suite tells its author what it needs.

A contract class names the fixtures it needs as :class:`DeclaredFixture` values, and an autouse
fixture of the class calls :func:`check_declared` before each test: every declared fixture the
test uses is looked up first, so that a missing one fails the test with its name and what it
must return, instead of pytest's bare "fixture not found". The tests keep the plain names
(``store``, ``make_lock``), and the author's fixture may be defined in the test module or in
the class: the lookup starts at the test, as pytest's own does, and pytest then hands the test
the value already made.

Optional capabilities are boolean class attributes (``supports_fork = False``); :func:`needs`
skips a test whose capability is switched off, naming the flag, so a skip always says which
switch explains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest

__all__ = ["DeclaredFixture", "check_declared", "needs", "require"]


@attrs.frozen
class DeclaredFixture:
    """A fixture a contract class needs from the author.

    :param name: the fixture's name in the author's test module or class.
    :param returns: what it must return, said to the author when it is missing.
    :param flag: the capability flag whose tests need it, when it is optional: the author may
        set the flag to False instead of providing the fixture.
    """

    name: str
    returns: str
    flag: str | None = None

    def describe(self) -> str:
        """One line for the docs and the error: the name, what it returns, and the way out."""
        text = f"'{self.name}': {self.returns}"
        if self.flag is not None:
            text += f" (only for the tests of {self.flag}; set {self.flag} = False to skip them)"
        return text


def require(request: pytest.FixtureRequest, fixture: DeclaredFixture) -> Any:
    """The value of the author's ``fixture``; fails the test naming it when none is defined.

    An error inside the author's fixture (or one of its own missing dependencies) is not
    reworded: it is theirs to read as pytest reports it.
    """
    try:
        return request.getfixturevalue(fixture.name)
    except pytest.FixtureLookupError as exc:
        if exc.argname != fixture.name:
            raise
    owner = type(request.instance).__name__ if request.instance is not None else "this test"
    contract = _contract_of(request)
    pytest.fail(
        f"{owner}{contract} needs the fixture {fixture.describe()}. Define it in the test "
        "module or in the class.",
        pytrace=False,
    )


def check_declared(
    test: object, request: pytest.FixtureRequest, fixtures: Sequence[DeclaredFixture]
) -> None:
    """Before a test runs: skip it if it uses an optional fixture whose flag is off, and look
    up every declared fixture it uses, failing with :func:`require`'s message if one is
    missing."""
    used = [fixture for fixture in fixtures if fixture.name in request.fixturenames]
    for fixture in used:
        if fixture.flag is not None:
            needs(test, fixture.flag)
    for fixture in used:
        require(request, fixture)


def needs(test: object, flag: str) -> None:
    """Skip the running test unless the capability ``flag`` is true on its class."""
    if not getattr(test, flag):
        pytest.skip(f"{type(test).__name__}.{flag} is False")


def _contract_of(request: pytest.FixtureRequest) -> str:
    """The contract class the author's class subclasses, as " (a StoreContract)"."""
    if request.instance is None:
        return ""
    for base in type(request.instance).__mro__[1:]:
        if base.__name__.endswith("Contract"):
            return f" (a {base.__name__})"
    return ""
