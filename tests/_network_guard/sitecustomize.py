"""Python subprocesses of the test suite import this first (``PYTHONPATH``): they get the
suite's network guard too (see ``redbeat_network_guard``)."""

import os

if os.environ.get("REDBEAT_TEST_NETWORK_GUARD") == "1":
    import redbeat_network_guard

    redbeat_network_guard.install()
