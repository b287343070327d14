"""Prometheus metrics for RedBeat (work in progress)."""
