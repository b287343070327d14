"""Registers the Cluster backend with RedBeat (entry point `cluster` in the group `redbeat`).

Nothing is registered yet: until the backend lands, its URL schemes fail with the registry's
"install the extra" error, which names this distribution.
"""
