"""RedBeat's Redis Cluster backend (work in progress: see the issue)."""
