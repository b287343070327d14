"""RedBeat's benchmark suite: RedBeat and celery-redbeat 2.4.2 side by side (see run.py)."""
