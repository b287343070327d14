"""Django settings for the django-celery-beat measurements (its venv only).

A database is described by a small JSON-able dict the runner passes down: ``{"engine":
"sqlite", "path": ...}`` or ``{"engine": "postgresql", "host": ..., "port": ..., "name": ...,
"user": ...}`` (always 127.0.0.1 or a unix socket folder).
"""

from __future__ import annotations

from typing import Any

#: Persistent connections: django-celery-beat calls ``close_old_connections()`` on every tick,
#: which with Django's default (``CONN_MAX_AGE=0``) reconnects to the database at each tick.
#: A long-running beat is deployed with persistent connections; we measure that, its best case.
CONN_MAX_AGE = None


def database(db: dict[str, Any]) -> dict[str, Any]:
    if db["engine"] == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": db["path"],
            "CONN_MAX_AGE": CONN_MAX_AGE,
            # Two beats on one file (B6) wait for each other's write lock instead of failing.
            "OPTIONS": {"timeout": 30},
        }
    if db["engine"] == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db["name"],
            "USER": db["user"],
            "HOST": db["host"],
            "PORT": str(db["port"]),
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    raise ValueError(f"unknown database engine {db['engine']!r}: sqlite or postgresql")


def configure(db: dict[str, Any]) -> None:
    """Configure Django for ``db`` and set it up (apps loaded, models importable)."""
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={"default": database(db)},
        INSTALLED_APPS=["django_celery_beat"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        LOGGING_CONFIG=None,
    )
    django.setup()
