"""Crash-safe file replacement: the target is always either the old or the new complete content."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import _process

__all__ = [
    "FILE_MODE",
    "TEMP_MARK",
    "fsync_dir",
    "owner_only_file",
    "remove_orphan_temps",
    "temp_path",
    "write_all",
    "write_atomic",
    "write_chunks",
]

FILE_MODE = 0o600
TEMP_MARK = ".tmp."
# O_NOFOLLOW: a symlink planted where the temp file goes must not redirect our write.
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable. Some platforms cannot open directories: best effort there."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(target: Path) -> Path:
    # Host and pid in the name let a later writer recognise (and delete) the leftovers of a crashed one.
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}{TEMP_MARK}{_process.hostname()}.{os.getpid()}.{token}")


@contextlib.contextmanager
def owner_only_file(path: Path) -> Iterator[int]:
    """Create ``path`` exclusively with mode 0600 from the start (never chmod'ed wider or later)."""
    fd = os.open(path, _CREATE_FLAGS, FILE_MODE)
    try:
        yield fd
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _iov_max() -> int:
    try:
        value = os.sysconf("SC_IOV_MAX")
    except (AttributeError, ValueError, OSError):
        value = -1
    return min(value, 1024) if value > 0 else 16  # POSIX guarantees at least 16


_IOV_MAX = _iov_max()


def write_chunks(fd: int, chunks: Sequence[bytes | memoryview]) -> None:
    """Write ``chunks`` in order with as few system calls as possible (``writev`` where available)."""
    if not hasattr(os, "writev"):  # pragma: no cover - not POSIX
        for chunk in chunks:
            write_all(fd, chunk)
        return
    for start in range(0, len(chunks), _IOV_MAX):
        batch = chunks[start : start + _IOV_MAX]
        written = os.writev(fd, batch)
        if written == sum(map(len, batch)):
            continue
        # Short write (signal, nearly full disk): finish this batch piece by piece.
        for chunk in batch:
            size = len(chunk)
            if written >= size:
                written -= size
                continue
            write_all(fd, memoryview(chunk)[written:])
            written = 0


def write_atomic(target: Path, data: bytes | Sequence[bytes | memoryview]) -> None:
    """Replace ``target`` with ``data``: temp file beside it, fsync, rename over, fsync the directory.

    On failure the temp file is removed and the exception propagates: ``target`` is untouched. The final
    directory fsync also makes any rename done just before in the same directory (the backup) durable.
    """
    temp = temp_path(target)
    try:
        with owner_only_file(temp) as fd:
            write_chunks(fd, [data] if isinstance(data, bytes) else data)
            os.fsync(fd)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(target.parent)


def remove_orphan_temps(target: Path) -> None:
    """Delete temp files left beside ``target`` by crashed writers of this host (their pid is gone)."""
    prefix = f".{target.name}{TEMP_MARK}"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    host = _process.hostname()
    for name in names:
        if not name.startswith(prefix):
            continue
        owner, _, rest = name[len(prefix) :].rpartition(".")  # "<host>.<pid>" , "<token>"
        owner_host, _, pid_text = owner.rpartition(".")
        if owner_host != host or not pid_text.isdigit() or not rest:
            continue
        pid = int(pid_text)
        if pid != os.getpid() and not _process.pid_exists(pid):
            with contextlib.suppress(OSError):
                os.unlink(target.parent / name)
