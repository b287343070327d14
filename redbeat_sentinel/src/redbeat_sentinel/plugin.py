"""Registers the Sentinel backend with RedBeat (entry point `sentinel` in the group `redbeat`).

Nothing is registered yet: until the backend lands, its URL schemes fail with the registry's
"install the extra" error, which names this distribution.
"""
