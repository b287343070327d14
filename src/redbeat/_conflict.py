"""Both celery-redbeat and RedBeat own the import name ``redbeat``; with both installed, which
one Python imports depends on install order, and files of one may overwrite the other's. That
is never what anybody wants, so it is an error with the fix in its message."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

from redbeat_core.exceptions import ConflictingDistributionError


def refuse_celery_redbeat() -> None:
    try:
        other = distribution("celery-redbeat")
    except PackageNotFoundError:
        return
    raise ConflictingDistributionError(
        f"celery-redbeat {other.version} is installed in the same environment as RedBeat; both "
        "provide the 'redbeat' package. RedBeat replaces it (same settings, same data): run "
        "'pip uninstall celery-redbeat', then reinstall RedBeat."
    )
