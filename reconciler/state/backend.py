"""The contract every state backend keeps (local file now, PostgreSQL later).

The API is synchronous on purpose: the engine calls it from asyncio through ``asyncio.to_thread`` (or
directly for the cheap calls), and a blocking API is what both a file system and a database driver offer.

Serial ownership: **the backend bumps the serial.** ``write(doc, expected_serial=N)`` stores ``doc`` with
``serial = N + 1`` (or ``doc.serial + 1`` when nothing is stored yet and ``expected_serial`` is None) and
returns the document exactly as stored; the caller keeps using the returned document and passes its serial
as the next ``expected_serial``. ``doc.serial`` is otherwise ignored, so a caller cannot skip or reuse a
serial by mistake. Every successful write bumps the serial, even if nothing changed: callers only write
after an operation completed.
"""

from __future__ import annotations

import abc
import threading
from types import TracebackType
from typing import Protocol, runtime_checkable

from .lockinfo import LockInfo, LockRequest
from .model import StateDocument

__all__ = ["Lock", "StateBackend"]


class Lock(abc.ABC):
    """A held state lock. Use as a context manager; leaving the block releases it.

    ``taken_over`` is the stale lock (holder proven gone) this one replaced, if any, so the caller can tell
    the user whose run was interrupted.
    """

    def __init__(self, info: LockInfo, *, taken_over: LockInfo | None = None) -> None:
        self._info = info
        self._taken_over = taken_over
        self._released = False
        self._release_mutex = threading.Lock()

    @property
    def info(self) -> LockInfo:
        return self._info

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def taken_over(self) -> LockInfo | None:
        return self._taken_over

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> bool:
        """Release the lock if it is still ours. Idempotent; False if it had been removed by someone else."""
        with self._release_mutex:
            if self._released:
                return False
            self._released = True
            return self._release()

    @abc.abstractmethod
    def _release(self) -> bool:
        """Remove the lock record only if it still carries our id."""

    @abc.abstractmethod
    def verify(self) -> None:
        """Raise ``LockLostError`` unless the stored lock is still this one (e.g. before a long step)."""

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Never raise here: an exception from release would hide the one that ended the block.
        self.release()


@runtime_checkable
class StateBackend(Protocol):
    """Where a stack's state lives, with compare-and-swap writes and an exclusive lock."""

    def read(self) -> StateDocument | None:
        """The stored document, or None when there is no state yet.

        Raises ``StateCorruptError`` for a document that exists but cannot be used (never returns None
        for it).
        """
        ...

    def write(self, doc: StateDocument, *, expected_serial: int | None) -> StateDocument:
        """Store ``doc`` atomically if the stored serial is ``expected_serial`` (None: nothing stored yet).

        Returns the stored document (serial bumped by the backend, see module doc). Raises
        ``StateConflictError`` when the stored serial differs, ``StateLineageError`` when ``doc`` belongs to
        another lineage than the stored one, ``StateWriteError`` when storing fails (the old state is intact).
        Thread-safe; concurrent writes of one process are serialised.
        """
        ...

    def lock(self, info: LockRequest, *, timeout: float) -> Lock:
        """Take the exclusive state lock, polling up to ``timeout`` seconds (0: a single attempt).

        Raises ``LockHeldError`` carrying the holder when the lock stays held. A lock whose holder is proven
        gone (same host, dead pid) is taken over and reported in ``Lock.taken_over``; a lock of a live
        process or another host never is.
        """
        ...

    def current_lock(self) -> LockInfo | None:
        """The current holder, or None when unlocked."""
        ...

    def force_unlock(self, lock_id: str) -> None:
        """Remove the lock if its id is ``lock_id``; ``LockMismatchError`` otherwise (also when unlocked)."""
        ...

    def describe(self) -> str:
        """Where the state lives, for messages: a URL without credentials."""
        ...
