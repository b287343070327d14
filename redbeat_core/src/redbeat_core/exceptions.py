"""Errors RedBeat raises on purpose. Each says what is wrong and how to fix it."""

from __future__ import annotations

from redbeat_core.masking import MASK, is_secret_name, redacted


class RedBeatError(Exception):
    """Base class of every error RedBeat raises on purpose."""


class ConfigurationError(RedBeatError, ValueError):
    """A setting has a value RedBeat cannot use. Raised at start-up, never mid-loop.

    The message names the setting, the value found and what is accepted. The value is kept
    and shown with its secrets masked (:func:`~redbeat_core.masking.redacted`: passwords in
    URLs, secret keys of option dicts): errors end up in logs, crash reports and tickets.
    """

    def __init__(self, setting: str, value: object, accepted: str) -> None:
        self.setting = setting
        # A secret setting's own value (``options['password']``) is masked whole.
        secret = is_secret_name(setting) and isinstance(value, str | bytes | int | float)
        value = MASK if secret else redacted(value)
        self.value = value
        self.accepted = accepted
        super().__init__(f"invalid setting {setting}={value!r}: {accepted}")


class UnknownBackendError(ConfigurationError):
    """No installed backend handles the URL's scheme."""

    def __init__(self, setting: str, url: str, scheme: str, known: list[str], hint: str) -> None:
        self.scheme = scheme
        known_text = ", ".join(f"{k}://" for k in sorted(known)) or "none"
        super().__init__(
            setting,
            url,
            f"no installed backend handles '{scheme}://' (installed: {known_text}). {hint}",
        )


class DuplicateBackendError(RedBeatError):
    """Two plugins registered the same URL scheme."""


class EntryDecodeError(RedBeatError, ValueError):
    """A stored entry cannot be turned back into a schedule entry.

    Carries the entry's name and the reason, which is what the quarantine records.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"entry {name!r}: {reason}")


class StoreUnavailableError(RedBeatError):
    """The storage could not be reached (after the backend's retry policy gave up).

    The scheduler keeps its loop alive on this error and steps down once its lock must have
    lapsed; backends translate their client's connection errors into it. ``hint`` is the
    backend's advice for a storage unreachable at start-up (how to make the beat wait for it),
    which the scheduler adds to the error that stops start-up.
    """

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        self.hint = hint


class StorePermissionError(StoreUnavailableError):
    """The storage refused an operation for lack of permission (an access control list).

    An outage as far as the scheduler is concerned: the beat logs it once, keeps its loop alive
    and tries again every lock poll interval (stepping down once its lease has lapsed), so
    granting the permission on the server is enough, without a restart. ``missing`` names what
    to grant when the backend can tell (a command, a key pattern).
    """

    def __init__(self, *args: object, missing: str | None = None) -> None:
        super().__init__(*args)
        self.missing = missing


class PluginError(RedBeatError):
    """A plugin could not be loaded or declares a hook that does not exist."""


class ConflictingDistributionError(RedBeatError, ImportError):
    """celery-redbeat is installed next to RedBeat: both own the ``redbeat`` import name."""
