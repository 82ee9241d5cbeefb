"""Write-through persistence of the emulator's records in SQLite (``--db FILE``).

The in-memory store stays the source of truth for reads; every mutation is also written here so a
restart can reload it. Without ``--db`` the :class:`MemoryPersistence` no-op is used, so in-memory mode
pays no SQLite cost at all.

File contents are stored once per sha256 in ``blobs``; a fork only copies small ``files`` rows.
Uploads in progress and presigned-URL tokens are deliberately not persisted (they are short-lived).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic_core import to_json

from .records import FileEntry

__all__ = ["KINDS", "Loaded", "MemoryPersistence", "Persistence", "SqlitePersistence"]

# One table per record kind: (id, json).
KINDS = ("vms", "filesystems", "mounts", "runs", "idempotency")


@dataclass
class Loaded:
    """Everything read back at start: JSON rows per kind, and files per VM."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, dict[str, FileEntry]] = field(default_factory=dict)


class Persistence(Protocol):
    # False for the in-memory mode: callers then skip building the JSON they would hand over.
    enabled: bool

    def load(self) -> Loaded: ...
    def put(self, kind: str, ident: str, data: dict[str, Any]) -> None: ...
    def delete(self, kind: str, ident: str) -> None: ...
    def put_files(self, vm_id: str, files: dict[str, FileEntry]) -> None: ...
    def delete_files(self, vm_id: str) -> None: ...
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...


class MemoryPersistence:
    """Persistence that keeps nothing: the in-memory mode."""

    enabled = False

    def load(self) -> Loaded:
        return Loaded()

    def put(self, kind: str, ident: str, data: dict[str, Any]) -> None:
        return None

    def delete(self, kind: str, ident: str) -> None:
        return None

    def put_files(self, vm_id: str, files: dict[str, FileEntry]) -> None:
        return None

    def delete_files(self, vm_id: str) -> None:
        return None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def clear(self) -> None:
        return None

    def close(self) -> None:
        return None


class _Sharer:
    """One object per distinct value among the rows read back, as forks share them in memory.

    Replicas forked from one source hold equal rule and key documents, equal strings (org, platform,
    source ids) and equal files; decoded row by row, each VM held its own copies (about two thirds of the
    emulator's memory at 10,000 VMs). Stored values are never changed in place, only replaced (see
    ``fork._shared``), so sharing them is safe. Documents are compared by their JSON text, which keeps
    ``1`` and ``1.0`` or different key orders apart.
    """

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._documents: dict[bytes, Any] = {}
        self._files: dict[FileEntry, FileEntry] = {}

    def text(self, value: str) -> str:
        return self._texts.setdefault(value, value)

    def document(self, value: dict[str, Any]) -> dict[str, Any]:
        return self._documents.setdefault(to_json(value), value)

    def file(self, entry: FileEntry) -> FileEntry:
        return self._files.setdefault(entry, entry)

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        for key, value in row.items():
            if isinstance(value, str):
                row[key] = self.text(value)
            elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
                # A map of documents (rules or keys by id): its own dict, shared documents inside. Other
                # containers stay the row's own, in case a handler ever changes one in place.
                row[key] = {self.text(k): self.document(v) for k, v in value.items()}
        return row


class SqlitePersistence:
    """SQLite-backed persistence; one connection guarded by a lock (the store serialises writers)."""

    enabled = True

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit; transaction() groups the writes of one request.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._depth = 0
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for kind in KINDS:
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {kind} (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files (vm_id TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,"
            " mode INTEGER NOT NULL, secret INTEGER NOT NULL, PRIMARY KEY (vm_id, path))"
        )

    def load(self) -> Loaded:
        loaded = Loaded()
        shared = _Sharer()
        with self._lock:
            for kind in KINDS:
                cursor = self._db.execute(f"SELECT data FROM {kind}")
                loaded.rows[kind] = [shared.row(json.loads(text)) for (text,) in cursor]
            cursor = self._db.execute(
                "SELECT f.vm_id, f.path, f.sha256, f.mode, f.secret, b.data FROM files f"
                " JOIN blobs b ON b.sha256 = f.sha256"
            )
            for vm_id, path, sha, mode, secret, data in cursor:
                entry = FileEntry(bytes(data), sha, int(mode), bool(secret))
                loaded.files.setdefault(vm_id, {})[shared.text(path)] = shared.file(entry)
        return loaded

    def put(self, kind: str, ident: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO {kind} (id, data) VALUES (?, ?)", (ident, text))

    def delete(self, kind: str, ident: str) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {kind} WHERE id = ?", (ident,))

    def put_files(self, vm_id: str, files: dict[str, FileEntry]) -> None:
        if not files:
            return
        blobs = {entry.sha256: entry.data for entry in files.values()}
        rows: Iterable[tuple[Any, ...]] = [
            (vm_id, path, entry.sha256, entry.mode, int(entry.secret)) for path, entry in files.items()
        ]
        with self._lock, self.transaction():
            self._db.executemany("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", blobs.items())
            self._db.executemany(
                "INSERT OR REPLACE INTO files (vm_id, path, sha256, mode, secret) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def delete_files(self, vm_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM files WHERE vm_id = ?", (vm_id,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def clear(self) -> None:
        with self._lock, self.transaction():
            for table in (*KINDS, "files", "blobs"):
                self._db.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        with self._lock:
            self._db.close()
