"""The security guide's rule for the sentinels is taken by a real sentinel as written."""

from __future__ import annotations

from pathlib import Path

from redbeat_redis import acl
from redbeat_redis.testing.sentinel import SentinelTopology


def test_the_security_guides_sentinel_rule_is_taken_by_a_sentinel_as_written(
    sentinel_topology: SentinelTopology,
) -> None:
    page = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    (line,) = [x for x in page.splitlines() if x.startswith("ACL SETUSER") and "+sentinel|" in x]
    assert line.endswith(f" {acl.rule('sentinels')}")
    sentinel = sentinel_topology.sentinels[0]
    try:
        sentinel.call(*line.split())  # an error reply raises
    finally:
        sentinel.call("ACL", "DELUSER", line.split()[2])
