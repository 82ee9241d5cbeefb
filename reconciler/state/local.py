"""State in a local JSON file, with a lock file beside it.

Files, all mode 0600 (created so, never chmod'ed), in a directory created 0700 when missing::

    state.json          the document; replaced atomically on every write
    state.json.backup   the previous document (hard link to the replaced file, so keeping it is free)
    state.json.lock     LockInfo JSON of the current holder; created with O_CREAT|O_EXCL
    state.json.guard    empty; flock()ed for a few microseconds around check-then-act steps (see below)

Atomicity: a write goes to a temp file in the same directory, is fsync'ed, renamed over ``state.json`` and
the directory is fsync'ed, so the file is always one complete document. Temp files of a crashed writer are
ignored by reads and deleted by the next writer on this host.

Check-then-act steps (compare the stored serial then replace; read the lock then delete it) must not
interleave between processes. Taking the lock itself needs no help (O_EXCL is atomic), but deciding that a
lock is stale and deleting it, releasing it, force-unlocking it and the CAS write are done under an
``flock`` of the guard file: unlike a lock file, a kernel lock dies with its process, so a crash there
cannot leave anything behind. Where ``fcntl`` is missing the guard is a no-op and these steps are only
protected by the state lock itself, which every mutating command takes anyway.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from . import _process
from ._atomic import (
    FILE_MODE,
    fsync_dir,
    owner_only_file,
    remove_orphan_temps,
    temp_path,
    write_all,
    write_atomic,
)
from .backend import Lock
from .codec import StateEncoder, decode_state
from .errors import (
    LockCorruptError,
    LockHeldError,
    LockLostError,
    LockMismatchError,
    StateConflictError,
    StateCorruptError,
    StateLineageError,
    StateWriteError,
)
from .lockinfo import LockInfo, LockRequest
from .model import STATE_FORMAT_VERSION, StateDocument

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["LocalLock", "LocalStateBackend"]

_log = logging.getLogger(__name__)

DIR_MODE = 0o700
# A lock file is created empty and filled right after; a reader seeing it unreadable waits this long for
# the content before calling it corrupt (only a crash in that instant leaves such a file).
_LOCK_WRITE_GRACE = 2.0
_POLL_FIRST = 0.02
_POLL_MAX = 0.25


class _Signature(NamedTuple):
    """Identity of one version of the state file: any replacement changes the inode (and the times)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Signature:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Known(NamedTuple):
    """What we last read or wrote, so a write can check the stored serial without parsing the file."""

    signature: _Signature
    lineage: str
    serial: int


class _Unreadable(NamedTuple):
    reason: str
    age: float


class LocalLock(Lock):
    """A held lock file. Released (deleted) only while it still carries our id."""

    def __init__(self, backend: LocalStateBackend, info: LockInfo, *, taken_over: LockInfo | None) -> None:
        super().__init__(info, taken_over=taken_over)
        self._backend = backend

    def _release(self) -> bool:
        removed = self._backend._remove_lock_if(self.info.id)
        if not removed:
            _log.warning("state lock %s was no longer ours when released (force-unlocked?)", self.info.id)
        return removed

    def verify(self) -> None:
        current = self._backend._read_lock_settled()
        if current is None or current.id != self.info.id:
            raise LockLostError(self.info, current)


class LocalStateBackend:
    """``StateBackend`` over a local file (see module doc for the files and guarantees)."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(os.path.abspath(path))
        self._dir = self._path.parent
        self._backup = self._path.with_name(self._path.name + ".backup")
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._guard_path = self._path.with_name(self._path.name + ".guard")
        self._mutex = threading.Lock()  # serialises read/write of this process (the engine's threads)
        self._encoder = StateEncoder()
        self._known: _Known | None = None
        # sha256 of the bytes last decoded, and their document; dropped by any write.
        self._last_read: tuple[bytes, StateDocument] | None = None

    # ------------------------------------------------------------------ paths and description

    @property
    def path(self) -> Path:
        return self._path

    @property
    def backup_path(self) -> Path:
        return self._backup

    @property
    def lock_path(self) -> Path:
        return self._lock_path

    def describe(self) -> str:
        return f"file://{self._path.as_posix()}"

    def __repr__(self) -> str:
        return f"LocalStateBackend({str(self._path)!r})"

    def _ensure_dir(self) -> None:
        try:
            self._dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise StateWriteError(
                self._path, f"cannot create directory {self._dir}: {exc.strerror}"
            ) from None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover - not POSIX
            yield
            return
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self._guard_path, flags, FILE_MODE)
        except OSError as exc:
            raise StateWriteError(self._guard_path, exc.strerror or str(exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    # ------------------------------------------------------------------ reading

    def _hint(self) -> str:
        if self._backup.exists():
            return f"The previous state is kept in {self._backup}."
        return ""

    def read(self) -> StateDocument | None:
        with self._mutex:
            return self._read_unlocked()

    def _read_unlocked(self) -> StateDocument | None:
        try:
            fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            self._known = None
            self._last_read = None
            return None
        except OSError as exc:
            raise StateCorruptError(self._path, f"it cannot be opened ({exc.strerror})") from None
        try:
            with os.fdopen(fd, "rb") as handle:
                st = os.fstat(handle.fileno())
                data = handle.read()
        except OSError as exc:
            raise StateCorruptError(self._path, f"it cannot be read ({exc.strerror})") from None
        digest = hashlib.sha256(data).digest()
        last = self._last_read
        if last is not None and last[0] == digest:
            # The very bytes decoded last time (a command reads the state more than once before it
            # writes): the same immutable document, instead of a second one to build and hold.
            doc = last[1]
        else:
            self._last_read = None  # before decoding: the previous document must not outlive its use
            doc = decode_state(data, self._path, hint=self._hint())
            self._last_read = (digest, doc)
        self._known = _Known(_Signature.of(st), doc.lineage, doc.serial)
        return doc

    def _stored_header(self) -> _Known | None:
        """Lineage and serial of the stored document; parses the file only if someone else replaced it."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateCorruptError(self._path, f"it cannot be inspected ({exc.strerror})") from None
        known = self._known
        if known is not None and known.signature == _Signature.of(st):
            return known
        if self._read_unlocked() is None:
            return None
        return self._known

    # ------------------------------------------------------------------ writing

    def write(self, doc: StateDocument, *, expected_serial: int | None) -> StateDocument:
        if doc.version != STATE_FORMAT_VERSION:
            raise ValueError(f"cannot write state format version {doc.version}; only {STATE_FORMAT_VERSION}")
        with self._mutex:
            self._ensure_dir()
            with self._guard():
                remove_orphan_temps(self._path)
                remove_orphan_temps(self._backup)
                stored = self._stored_header()
                actual = None if stored is None else stored.serial
                if actual != expected_serial:
                    raise StateConflictError(
                        self.describe(), expected_serial=expected_serial, actual_serial=actual
                    )
                if stored is not None and stored.lineage != doc.lineage:
                    raise StateLineageError(
                        self.describe(),
                        stored_lineage=stored.lineage,
                        written_lineage=doc.lineage,
                        serial=stored.serial,
                    )
                base = doc.serial if stored is None else stored.serial
                new = doc.model_copy(update={"serial": base + 1})
                self._last_read = None
                data = self._encoder.encode_chunks(new)
                try:
                    if stored is not None:
                        self._keep_backup()
                    write_atomic(self._path, data)
                    st = os.stat(self._path)
                except OSError as exc:
                    self._known = None
                    raise StateWriteError(self._path, exc.strerror or str(exc)) from None
                self._known = _Known(_Signature.of(st), new.lineage, new.serial)
                return new

    def _keep_backup(self) -> None:
        """Make ``state.json.backup`` the document about to be replaced (atomically, without copying)."""
        temp = temp_path(self._backup)
        try:
            st = os.stat(self._path)
            # Already the backup (a writer died between backup and replace): renaming one hard link over
            # another of the same file is a no-op that would leave the temp name behind.
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(st, os.stat(self._backup)):
                    return
            # A state file made by someone else with wider permissions must not become a wider backup.
            if st.st_mode & 0o077:
                raise OSError(errno.EPERM, "state file is not owner-only")
            os.link(self._path, temp)
        except FileNotFoundError:
            return
        except OSError:
            # No hard links here (or permissions to narrow): copy the bytes into a fresh 0600 file.
            try:
                data = self._path.read_bytes()
            except FileNotFoundError:
                return
            with owner_only_file(temp) as fd:
                write_all(fd, data)
                os.fsync(fd)
        try:
            os.replace(temp, self._backup)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    # ------------------------------------------------------------------ locking

    def _read_lock(self) -> LockInfo | _Unreadable | None:
        try:
            with open(self._lock_path, "rb") as handle:
                st = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError:
            if os.path.islink(self._lock_path):  # O_EXCL fails on it, so it would block forever
                return _Unreadable("it is a dangling symbolic link", math.inf)
            return None
        except OSError as exc:
            return _Unreadable(f"it cannot be read ({exc.strerror})", math.inf)
        try:
            return LockInfo.model_validate_json(data)
        except ValidationError:
            age = max(0.0, time.time() - st.st_mtime)
            return _Unreadable("it is empty" if not data.strip() else "it is not a valid lock record", age)

    def _read_lock_settled(self) -> LockInfo | None:
        """The lock record, waiting out the instant between its creation and its content being written."""
        deadline = time.monotonic() + _LOCK_WRITE_GRACE
        while True:
            found = self._read_lock()
            if not isinstance(found, _Unreadable):
                return found
            if found.age >= _LOCK_WRITE_GRACE or time.monotonic() >= deadline:
                raise LockCorruptError(self._lock_path, found.reason)
            time.sleep(_POLL_FIRST)

    def _try_create_lock(self, payload: bytes) -> bool:
        try:
            with owner_only_file(self._lock_path) as fd:
                try:
                    write_all(fd, payload)
                except OSError:
                    # Never leave an empty lock file behind: nobody could tell whose it is.
                    os.unlink(self._lock_path)
                    raise
        except FileExistsError:
            return False
        except OSError as exc:
            raise StateWriteError(self._lock_path, exc.strerror or str(exc)) from None
        return True

    def _remove_lock_if(self, lock_id: str) -> bool:
        """Delete the lock file if it still carries ``lock_id``; the decision and the delete are atomic."""
        with self._guard():
            current = self._read_lock()
            if not isinstance(current, LockInfo) or current.id != lock_id:
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_path)
            fsync_dir(self._dir)
            return True

    def lock(self, info: LockRequest, *, timeout: float) -> LocalLock:
        if timeout < 0:
            raise ValueError("lock timeout must not be negative")
        self._ensure_dir()
        mine = LockInfo.for_this_process(info, path=self.describe())
        payload = (mine.model_dump_json(indent=2) + "\n").encode()
        started = time.monotonic()
        deadline = started + timeout
        delay = _POLL_FIRST
        taken_over: LockInfo | None = None
        unreadable_since: float | None = None
        while True:
            if self._try_create_lock(payload):
                return LocalLock(self, mine, taken_over=taken_over)
            holder = self._read_lock()
            if holder is None:
                continue  # released between our attempt and the read: try again at once
            if isinstance(holder, _Unreadable):
                # Being written right now (or left empty by a crash): give it the grace period, measured
                # on our clock too in case the file's mtime comes from a skewed (network) clock.
                now = time.monotonic()
                unreadable_since = now if unreadable_since is None else unreadable_since
                if holder.age >= _LOCK_WRITE_GRACE or now - unreadable_since >= _LOCK_WRITE_GRACE:
                    raise LockCorruptError(self._lock_path, holder.reason)
                time.sleep(_POLL_FIRST)
                continue
            unreadable_since = None
            if _process.holder_is_gone(holder.host, holder.pid, holder.process_start, holder.pid_namespace):
                if self._remove_lock_if(holder.id):
                    taken_over = holder
                    _log.warning(
                        "took over stale state lock %s of %s (pid %d on %s, %s since %s): "
                        "that process is no longer running",
                        holder.id,
                        holder.who,
                        holder.pid,
                        holder.host,
                        holder.operation,
                        holder.created_at,
                    )
                continue
            now = time.monotonic()
            if now >= deadline:
                raise LockHeldError(holder, waited=now - started if timeout > 0 else 0.0)
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, _POLL_MAX)

    def current_lock(self) -> LockInfo | None:
        return self._read_lock_settled()

    def force_unlock(self, lock_id: str) -> None:
        if not self._lock_path.exists():
            raise LockMismatchError(self.describe(), lock_id, None)
        with self._guard():
            current = self._read_lock()
            if isinstance(current, _Unreadable):
                raise LockCorruptError(self._lock_path, current.reason)
            if current is None or current.id != lock_id:
                raise LockMismatchError(self.describe(), lock_id, current)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_path)
            fsync_dir(self._dir)
        _log.warning("force-unlocked state lock %s of %s (%s)", current.id, current.who, current.operation)
