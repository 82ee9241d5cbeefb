"""Errors of the state layer. ``str(error)`` is a complete message for the user: the CLI prints it as is.

::

    StateError
     ├── StateConfigurationError   the state URL is wrong or names an unavailable backend
     ├── StateCorruptError         the stored document cannot be read (never treated as "no state")
     ├── StateWriteError           the document could not be stored (the previous one is intact)
     ├── StateConflictError        compare-and-swap on serial failed: someone else wrote first
     │    └── StateLineageError    the document belongs to another state history
     └── StateLockError
          ├── LockHeldError        another run holds the lock (carries the holder)
          ├── LockMismatchError    force-unlock with an id that is not the current lock's
          ├── LockCorruptError     the lock record cannot be read
          └── LockLostError        our lock was removed (force-unlocked) while we held it
"""

from __future__ import annotations

from pathlib import Path

from .lockinfo import LockInfo

__all__ = [
    "LockCorruptError",
    "LockHeldError",
    "LockLostError",
    "LockMismatchError",
    "StateConfigurationError",
    "StateConflictError",
    "StateCorruptError",
    "StateError",
    "StateLineageError",
    "StateLockError",
    "StateWriteError",
]


class StateError(Exception):
    """Base of every state-layer error."""


class StateConfigurationError(StateError):
    """The state location is invalid or its backend is not available."""


class StateCorruptError(StateError):
    """The stored state exists but cannot be used; it is never silently treated as empty."""

    def __init__(self, path: Path | str, reason: str, *, hint: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        message = f"state file {self.path} cannot be used: {reason}"
        super().__init__(message + (f"\n{hint}" if hint else ""))


class StateWriteError(StateError):
    """Storing the state failed; the previously stored document is unchanged."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write state file {self.path}: {reason} (the previous state is intact)")


class StateConflictError(StateError):
    """The stored serial is not the one the writer based its document on."""

    def __init__(self, location: str, *, expected_serial: int | None, actual_serial: int | None) -> None:
        self.location = location
        self.expected_serial = expected_serial
        self.actual_serial = actual_serial
        expected = "no state" if expected_serial is None else f"serial {expected_serial}"
        actual = "no state" if actual_serial is None else f"serial {actual_serial}"
        super().__init__(
            f"state {location} changed since it was read: expected {expected}, found {actual}. "
            "Another run wrote it; run the command again to start from the current state."
        )


class StateLineageError(StateConflictError):
    """The document descends from another state (another stack, or a state file that was replaced)."""

    def __init__(self, location: str, *, stored_lineage: str, written_lineage: str, serial: int) -> None:
        StateError.__init__(
            self,
            f"refusing to write state {location}: its lineage is {stored_lineage} but the document to write "
            f"has lineage {written_lineage}. They are different states; check the stack's state: URL.",
        )
        self.location = location
        self.expected_serial = serial
        self.actual_serial = serial
        self.stored_lineage = stored_lineage
        self.written_lineage = written_lineage


class StateLockError(StateError):
    """Problems taking, checking or releasing the state lock."""


def _describe_holder(info: LockInfo) -> str:
    rows = [
        ("Lock ID", info.id),
        ("Who", info.who),
        ("Host", info.host),
        ("PID", str(info.pid)),
        ("Operation", info.operation),
        ("Since", info.created_at),
        ("Version", f"arkerctl {info.version}"),
    ]
    if info.stack:
        rows.append(("Stack", info.stack))
    if info.path:
        rows.append(("State", info.path))
    return "\n".join(f"  {label + ':':<11}{value}" for label, value in rows)


class LockHeldError(StateLockError):
    """Another run holds the state lock and did not release it within the lock timeout."""

    def __init__(self, holder: LockInfo, *, waited: float = 0.0) -> None:
        self.holder = holder
        self.waited = waited
        super().__init__(holder.id)

    def __str__(self) -> str:
        holder = self.holder
        waited = f" (waited {self.waited:.1f}s)" if self.waited > 0 else ""
        return (
            f"the state is locked by another arkerctl run{waited}.\n\n"
            f"{_describe_holder(holder)}\n\n"
            "Wait for that run to finish, or retry with a longer --lock-timeout (e.g. --lock-timeout 2m).\n"
            "If that run is no longer running and left the lock behind, clear it with:\n\n"
            f"  arkerctl force-unlock {holder.id}"
        )


class LockMismatchError(StateLockError):
    """``force_unlock`` was given an id that is not the current lock's (or no lock is held)."""

    def __init__(self, location: str, lock_id: str, current: LockInfo | None) -> None:
        self.location = location
        self.lock_id = lock_id
        self.current = current
        if current is None:
            message = f"cannot unlock state {location}: it is not locked (no lock with id {lock_id})"
        else:
            message = (
                f"cannot unlock state {location}: lock id {lock_id} does not match the current lock.\n\n"
                f"{_describe_holder(current)}"
            )
        super().__init__(message)


class LockCorruptError(StateLockError):
    """The lock record exists but cannot be read, so nobody can tell who holds it."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"state lock file {self.path} cannot be read: {reason}. If no arkerctl run is using this state, "
            "delete that file by hand and try again."
        )


class LockLostError(StateLockError):
    """The lock we took is gone or belongs to someone else now (it was force-unlocked)."""

    def __init__(self, lock: LockInfo, current: LockInfo | None) -> None:
        self.lock = lock
        self.current = current
        now = "nobody holds it now" if current is None else f"it is now held by {current.who} ({current.id})"
        super().__init__(f"the state lock {lock.id} of this run was removed while in use; {now}")
