"""Errors RedBeat raises on purpose. Each says what is wrong and how to fix it."""

from __future__ import annotations

import reprlib

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


class InvalidEntryError(RedBeatError, ValueError):
    """An argument to the entry API (``RedBeatSchedulerEntry``, ``update_from_dict``, an entry
    of ``beat_schedule``) has a value RedBeat cannot store or schedule.

    Raised when the entry is built (for a schedule Celery could not hold at all) or stored
    (``save()``, ``update_from_dict``, the start-up sync), and, for a stored schedule the beat
    refuses to run, while planning a tick (the entry is then quarantined with :attr:`reason`).
    The message names the entry, the field, the value found and what is accepted.
    """

    def __init__(
        self, name: object, field: str, value: object, accepted: str, *, shown: str | None = None
    ) -> None:
        self.name = name
        self.field = field
        self.value = value
        self.accepted = accepted
        #: How the value reads in the message, when its repr would not say it (Celery shows
        #: ``schedule(-5)`` as ``<freq: now>``).
        self.shown = shown if shown is not None else _short_repr(value)
        super().__init__(f"entry {name!r}: {self.reason}")

    @property
    def reason(self) -> str:
        """The field, the value and what is accepted, without the entry's name (what the
        quarantine records next to the entry's key)."""
        return f"invalid {self.field} {self.shown}: {self.accepted}"


def _short_repr(value: object) -> str:
    """``repr(value)``, cut short: a rejected argument may be a large list."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


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


class BrokenStoreError(StoreUnavailableError):
    """The storage answers but refuses the work: its shared data is not what RedBeat wrote (a
    key of the wrong type), or the server refuses the command (out of memory, a permission).

    A kind of :class:`StoreUnavailableError`, handled the same way: the beat logs it once and
    keeps running as a standby that retries, so one broken key never stops every beat in turn.
    The message names what is broken and the fix.
    """


class LockNotOwnedError(RedBeatError):
    """``lock.extend()`` on a lease this beat does not hold (never took, released, or lost to
    another beat). celery-redbeat's ``scheduler.lock`` raised its client library's
    ``LockNotOwnedError`` then; a backend may raise a subclass that is also that error, so code
    written for celery-redbeat catches it unchanged."""


class StorePermissionError(BrokenStoreError):
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
