"""Moving whole state documents in and out of backends: ``state pull``, ``state push``, ``state migrate``.

* ``pull(backend, serial=None)``: the current document, or an older serial the backend still keeps
  (PostgreSQL: the last N versions; a local file: the current one and ``state.json.backup``).
* ``push(backend, doc, force=False)``: store ``doc`` under the state lock; ``Pushed`` says the document as
  stored and whether anything was written (pushing what is stored already writes nothing). Refuses a
  document of another lineage, an older serial, or the same serial with other content (someone else's
  write would be lost), unless ``force``: then ``doc`` becomes the next serial of the stored state (taking
  its lineage). This is also how a bad apply is rolled back: pull an old serial, push it with force.
* ``migrate(src, dst)``: copy the state from one backend to another under both locks. An empty destination
  gets the document with its serial unchanged, so file -> PostgreSQL -> file gives the same bytes
  (``encode_state``); a destination holding another lineage is refused.

``pull`` and ``migrate`` return the document as stored (or read). Each function raises ``StateError``
subclasses whose text is the message for the user.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

from .backend import StateBackend
from .codec import decode_state
from .errors import StateError
from .local import LocalStateBackend
from .lockinfo import LockRequest
from .model import StateDocument

__all__ = ["Pushed", "SerialHistory", "TransferError", "migrate", "pull", "push"]


class TransferError(StateError):
    """A pull, push or migrate was refused; nothing was written."""


class Pushed(NamedTuple):
    document: StateDocument  # as stored
    written: bool  # False when the backend held that very document already


@runtime_checkable
class SerialHistory(Protocol):
    """A backend that keeps previous serials (the PostgreSQL backend)."""

    def read_serial(self, serial: int | None) -> StateDocument | None: ...


def _serials_kept(backend: StateBackend) -> list[int]:
    history = getattr(backend, "history", None)
    if callable(history):
        return sorted(entry.serial for entry in history())
    found = []
    for doc in (backend.read(), _local_backup(backend)):
        if doc is not None:
            found.append(doc.serial)
    return sorted(set(found))


def _local_backup(backend: StateBackend) -> StateDocument | None:
    if not isinstance(backend, LocalStateBackend) or not backend.backup_path.is_file():
        return None
    return decode_state(backend.backup_path.read_bytes(), backend.backup_path)


def pull(backend: StateBackend, serial: int | None = None) -> StateDocument:
    """The stored document (``serial`` None) or the version ``serial`` if the backend still keeps it."""
    if serial is None:
        doc = backend.read()
        if doc is None:
            raise TransferError(f"there is no state in {backend.describe()} yet")
        return doc
    if isinstance(backend, SerialHistory):
        found = backend.read_serial(serial)
    else:
        current = backend.read()
        backup = _local_backup(backend)
        found = next((doc for doc in (current, backup) if doc is not None and doc.serial == serial), None)
    if found is None:
        kept = _serials_kept(backend)
        available = ", ".join(str(number) for number in kept) if kept else "none"
        raise TransferError(
            f"state {backend.describe()} does not keep serial {serial} (serials available: {available})"
        )
    return found


def _first_write(backend: StateBackend, doc: StateDocument) -> StateDocument:
    # The backend stores ``doc.serial + 1`` when nothing is stored: hand it one less to keep the serial.
    return backend.write(doc.model_copy(update={"serial": doc.serial - 1}), expected_serial=None)


def push(
    backend: StateBackend,
    doc: StateDocument,
    *,
    force: bool = False,
    lock_timeout: float = 0.0,
    who: str | None = None,
) -> Pushed:
    """Store ``doc`` in ``backend`` under its lock (see module doc for what is refused without ``force``)."""
    where = backend.describe()
    request = LockRequest(operation="state push", stack=doc.stack, who=who)
    with backend.lock(request, timeout=lock_timeout):
        current = backend.read()
        if current is None:
            return Pushed(_first_write(backend, doc), written=True)
        if current.lineage != doc.lineage:
            if not force:
                raise TransferError(
                    f"refusing to push: state {where} has lineage {current.lineage} "
                    f"(serial {current.serial}) but the document has lineage {doc.lineage}; they are "
                    "different states. Use --force to replace it anyway."
                )
            doc = doc.model_copy(update={"lineage": current.lineage})
        elif not force and doc.serial < current.serial:
            raise TransferError(
                f"refusing to push serial {doc.serial}: state {where} is already at serial {current.serial} "
                "(newer). Pull it first, or use --force to roll back to this document."
            )
        elif doc.serial == current.serial:
            if doc == current:
                return Pushed(current, written=False)  # already there
            if not force:
                raise TransferError(
                    f"refusing to push: state {where} has a different document with the same serial "
                    f"{current.serial}. Pull it first, or use --force to replace it."
                )
        return Pushed(backend.write(doc, expected_serial=current.serial), written=True)


def migrate(
    src: StateBackend,
    dst: StateBackend,
    *,
    lock_timeout: float = 0.0,
    who: str | None = None,
) -> StateDocument:
    """Copy the state of ``src`` into ``dst`` (both locked meanwhile); returns the document stored in ``dst``.

    ``src`` is left as it was. Migrating again is a no-op; a destination behind the source (same lineage)
    is brought up to date, one ahead of it or of another lineage is refused.
    """
    if src.describe() == dst.describe():
        raise TransferError(f"source and destination are the same state ({src.describe()})")
    with src.lock(LockRequest(operation="state migrate", who=who), timeout=lock_timeout):
        doc = src.read()
        if doc is None:
            raise TransferError(f"there is no state in {src.describe()} to migrate")
        request = LockRequest(operation="state migrate", stack=doc.stack, who=who)
        with dst.lock(request, timeout=lock_timeout):
            current = dst.read()
            if current is None:
                return _first_write(dst, doc)
            if current.lineage != doc.lineage:
                raise TransferError(
                    f"refusing to migrate: {dst.describe()} already holds another state (lineage "
                    f"{current.lineage}, serial {current.serial}); the source has lineage {doc.lineage}. "
                    "Choose an empty destination."
                )
            if current == doc:
                return current
            if current.serial >= doc.serial:
                raise TransferError(
                    f"refusing to migrate: {dst.describe()} is at serial {current.serial}, not behind the "
                    f"source's serial {doc.serial}; it was written after an earlier migration."
                )
            return dst.write(doc, expected_serial=current.serial)
