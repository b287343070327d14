"""The security guide tells the truth: its ACL rules are the ones the ACL tests prove
(``redbeat_redis.acl``), and a server takes each ``ACL SETUSER`` line of it as written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redbeat_redis import acl
from redbeat_redis.testing.servers import ServerProcess

PAGE = Path(__file__).parents[2] / "docs" / "security.md"


def test_the_security_guide_shows_these_rules_and_the_server_takes_them_as_written(
    redbeat_server_factory: Callable[..., ServerProcess],
) -> None:
    server = redbeat_server_factory()
    page = PAGE.read_text()
    for feature, commands in acl.FEATURES.items():
        assert " ".join(f"+{c}" for c in commands) in page, f"the guide's {feature} row"
    for rule in (
        acl.rule("beat"),
        acl.rule("entries"),
        acl.rule("inspection"),
        acl.rule("beat", "replica_acks"),
        acl.rule("sentinels"),
        acl.rule("beat", "entries", "cluster", prefix="{redbeat}:"),
        acl.category_rule(),
    ):
        assert f" {rule}\n" in page, f"the guide lacks: {rule}"
    written = [line for line in page.splitlines() if line.startswith("ACL SETUSER ")]
    assert len(written) == 7
    for line in written:
        if "+sentinel|" not in line:  # a sentinel's rule: tests/sentinel/test_acl.py runs it
            server.call(*line.split())  # an error reply raises
