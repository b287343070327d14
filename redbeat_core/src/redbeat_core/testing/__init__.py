"""Test kit for RedBeat and for authors of storage backends, whatever their storage.

``contract`` holds the suite every store and lock must pass (import it from your tests: it
needs pytest); ``apps.celery_apps`` builds Celery apps wired to a storage URL. Servers to run
them against, and pytest fixtures that start them, belong to each backend's own testing kit.
"""

from __future__ import annotations

from redbeat_core.testing.apps import celery_apps

__all__ = ["celery_apps"]
