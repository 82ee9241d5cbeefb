"""Short-lived transfer state of the sync API: chunked uploads, presigned uploads and presigned reads.

Kept in memory only (never in SQLite): like the real service's staging area, an upload in progress does
not survive a restart. Entries expire after the presign TTL and are purged lazily.
"""

from __future__ import annotations

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


@dataclass
class ChunkUpload:
    vm_id: str
    upload_id: str
    path: str
    size: int
    buffer: bytearray
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


@dataclass
class PresignedUpload:
    vm_id: str
    upload_id: str
    token: str
    path: str
    size: int
    expires_at: float
    secret: bool = False
    data: bytes | None = None


@dataclass
class PresignedRead:
    token: str
    data: bytes
    expires_at: float


class Transfers:
    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self.chunks: dict[tuple[str, str], ChunkUpload] = {}
        self.uploads: dict[tuple[str, str], PresignedUpload] = {}
        self.upload_tokens: dict[str, PresignedUpload] = {}
        self.reads: dict[str, PresignedRead] = {}

    def clear(self) -> None:
        with self._lock:
            self.chunks.clear()
            self.uploads.clear()
            self.upload_tokens.clear()
            self.reads.clear()

    def expiry(self) -> float:
        return now_epoch() + self.ttl

    def purge(self) -> None:
        now = now_epoch()
        with self._lock:
            for key in [k for k, c in self.chunks.items() if c.expires_at < now]:
                del self.chunks[key]
            for token in [t for t, r in self.reads.items() if r.expires_at < now]:
                del self.reads[token]
            # Expired presigned uploads are kept until their commit reports them as expired.

    def new_read(self, data: bytes) -> PresignedRead:
        read = PresignedRead(secrets.token_urlsafe(24), data, self.expiry())
        with self._lock:
            self.reads[read.token] = read
        return read

    def new_upload(self, vm_id: str, path: str, size: int, secret: bool) -> PresignedUpload:
        upload_id = "upl_" + secrets.token_hex(12)
        upload = PresignedUpload(
            vm_id, upload_id, secrets.token_urlsafe(24), path, size, self.expiry(), secret
        )
        with self._lock:
            self.uploads[(vm_id, upload_id)] = upload
            self.upload_tokens[upload.token] = upload
        return upload

    def forget_upload(self, upload: PresignedUpload) -> None:
        with self._lock:
            self.uploads.pop((upload.vm_id, upload.upload_id), None)
            self.upload_tokens.pop(upload.token, None)

    def forget_vm(self, vm_id: str) -> None:
        with self._lock:
            for key in [k for k in self.chunks if k[0] == vm_id]:
                del self.chunks[key]
            for key in [k for k in self.uploads if k[0] == vm_id]:
                self.upload_tokens.pop(self.uploads.pop(key).token, None)
