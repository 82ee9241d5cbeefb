"""Short-lived transfer state of the sync API: chunked uploads, presigned uploads and presigned reads.

Kept in memory only (never in SQLite): like the real service's staging area, an upload in progress does
not survive a restart. Entries expire after the presign TTL and are purged lazily.
"""

from __future__ import annotations

import heapq
import secrets
import threading
from dataclasses import dataclass, field

from .clock import now_epoch

__all__ = ["ChunkUpload", "PresignedRead", "PresignedUpload", "Transfers", "merge_range"]


def merge_range(ranges: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """Add ``[start, end)`` to sorted, disjoint, non-adjacent ranges (adjacent ones are joined)."""
    merged: list[tuple[int, int]] = []
    placed = False
    for low, high in ranges:
        if high < start:
            merged.append((low, high))
        elif end < low:
            if not placed:
                merged.append((start, end))
                placed = True
            merged.append((low, high))
        else:
            start, end = min(start, low), max(end, high)
    if not placed:
        merged.append((start, end))
    return sorted(merged)


@dataclass(slots=True)
class ChunkUpload:
    vm_id: str
    upload_id: str
    path: str
    size: int
    # Received bytes; once complete, the written content itself (shared with the file, not a second
    # copy) until a resent chunk needs it writable again.
    buffer: bytearray | bytes
    expires_at: float
    ranges: list[tuple[int, int]] = field(default_factory=list)
    sha256: str | None = None
    secret: bool = False

    @property
    def received(self) -> int:
        return sum(high - low for low, high in self.ranges)

    @property
    def complete(self) -> bool:
        return self.size == 0 or self.ranges == [(0, self.size)]

    def receive(self, start: int, data: bytes) -> None:
        """Copy ``data`` in at ``start`` and record the range."""
        if not isinstance(self.buffer, bytearray):
            self.buffer = bytearray(self.buffer)
        self.buffer[start : start + len(data)] = data
        if data:
            self.ranges = merge_range(self.ranges, start, start + len(data))

    def content(self) -> bytes:
        """The received bytes (complete uploads), kept as the buffer from now on."""
        if isinstance(self.buffer, bytearray):
            self.buffer = bytes(self.buffer)
        return self.buffer


@dataclass(slots=True)
class PresignedUpload:
    vm_id: str
    upload_id: str
    token: str
    path: str
    size: int
    expires_at: float
    secret: bool = False
    data: bytes | None = None


@dataclass(slots=True)
class PresignedRead:
    token: str
    data: bytes
    expires_at: float


class Transfers:
    """The transfer tables. Expiry is found through a heap of (expires_at, key) entries, so a purge costs
    what it removes, not what is held (every sync write purges)."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self.chunks: dict[tuple[str, str], ChunkUpload] = {}
        self.uploads: dict[tuple[str, str], PresignedUpload] = {}
        self.upload_tokens: dict[str, PresignedUpload] = {}
        self.reads: dict[str, PresignedRead] = {}
        self._chunk_expiry: list[tuple[float, tuple[str, str]]] = []
        self._read_expiry: list[tuple[float, str]] = []
        # vm_id -> its chunk and upload keys (a list: a VM has a few at a time, and a set costs 3x)
        self._vm_keys: dict[str, list[tuple[str, str]]] = {}

    def clear(self) -> None:
        with self._lock:
            self.chunks.clear()
            self.uploads.clear()
            self.upload_tokens.clear()
            self.reads.clear()
            self._chunk_expiry.clear()
            self._read_expiry.clear()
            self._vm_keys.clear()

    def expiry(self) -> float:
        return now_epoch() + self.ttl

    def purge(self) -> None:
        now = now_epoch()
        with self._lock:
            heap = self._chunk_expiry
            while heap and heap[0][0] < now:
                expires_at, key = heapq.heappop(heap)
                chunk = self.chunks.get(key)
                if chunk is not None and chunk.expires_at == expires_at:
                    del self.chunks[key]
                    self._unlink(key)
            reads = self._read_expiry
            while reads and reads[0][0] < now:
                expires_at, token = heapq.heappop(reads)
                read = self.reads.get(token)
                if read is not None and read.expires_at == expires_at:
                    del self.reads[token]
            # Expired presigned uploads are kept until their commit reports them as expired.

    def _unlink(self, key: tuple[str, str]) -> None:
        if key in self.chunks or key in self.uploads:
            return
        keys = self._vm_keys.get(key[0])
        if keys is not None and key in keys:
            keys.remove(key)
            if not keys:
                del self._vm_keys[key[0]]

    def chunk(self, vm_id: str, upload_id: str) -> ChunkUpload | None:
        return self.chunks.get((vm_id, upload_id))

    def add_chunk(self, upload: ChunkUpload) -> None:
        key = (upload.vm_id, upload.upload_id)
        with self._lock:
            if key not in self.chunks and key not in self.uploads:
                self._vm_keys.setdefault(upload.vm_id, []).append(key)
            self.chunks[key] = upload
            heapq.heappush(self._chunk_expiry, (upload.expires_at, key))

    def drop_chunk(self, upload: ChunkUpload) -> None:
        key = (upload.vm_id, upload.upload_id)
        with self._lock:
            if self.chunks.get(key) is upload:
                del self.chunks[key]
                self._unlink(key)

    def new_read(self, data: bytes) -> PresignedRead:
        read = PresignedRead(secrets.token_urlsafe(24), data, self.expiry())
        with self._lock:
            self.reads[read.token] = read
            heapq.heappush(self._read_expiry, (read.expires_at, read.token))
        return read

    def new_upload(self, vm_id: str, path: str, size: int, secret: bool) -> PresignedUpload:
        upload_id = "upl_" + secrets.token_hex(12)
        upload = PresignedUpload(
            vm_id, upload_id, secrets.token_urlsafe(24), path, size, self.expiry(), secret
        )
        key = (vm_id, upload_id)
        with self._lock:
            if key not in self.chunks and key not in self.uploads:
                self._vm_keys.setdefault(vm_id, []).append(key)
            self.uploads[key] = upload
            self.upload_tokens[upload.token] = upload
        return upload

    def forget_upload(self, upload: PresignedUpload) -> None:
        key = (upload.vm_id, upload.upload_id)
        with self._lock:
            self.uploads.pop(key, None)
            self.upload_tokens.pop(upload.token, None)
            self._unlink(key)

    def forget_vm(self, vm_id: str) -> None:
        with self._lock:
            for key in self._vm_keys.pop(vm_id, ()):
                self.chunks.pop(key, None)
                upload = self.uploads.pop(key, None)
                if upload is not None:
                    self.upload_tokens.pop(upload.token, None)
