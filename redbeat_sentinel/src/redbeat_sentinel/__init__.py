"""RedBeat's Redis Sentinel backend (work in progress: see the issue)."""
