"""What the emulator remembers, one record type per Arker object.

These are mutable entities owned by the store (not values), so they are slotted dataclasses: cheap to
create and update when a benchmark forks ten thousand VMs. Each knows its JSON form for SQLite.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Bounds",
    "FileEntry",
    "FilesystemRecord",
    "IdempotencyRecord",
    "MountRecord",
    "RunRecord",
    "VmRecord",
]

REGULAR_FILE = 0o100000


def _fields(record: Any) -> dict[str, Any]:
    """A slotted record's fields as a dict (shallow: ``asdict``'s deep copy costs ~10x, for values that
    are only serialised)."""
    return {name: getattr(record, name) for name in record.__slots__}


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file inside a VM. ``data`` is shared between forks (bytes are immutable)."""

    data: bytes
    sha256: str
    mode: int = REGULAR_FILE | 0o644
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Bounds:
    """Resource limits a VM (and every fork of it) accepts."""

    min_vcpus: int
    max_vcpus: int
    min_memory_mib: int
    max_memory_mib: int
    min_disk_mib: int
    max_disk_mib: int


@dataclass(slots=True)
class VmRecord:
    vm_id: str
    seq: int
    owner_org_id: str
    name: str | None
    created_at: float
    platform: str
    vcpu: int
    memory_mib: int
    disk_mib: int
    bounds: Bounds
    description: str | None = None
    public: bool = False
    immutable: bool = False
    durable: bool = False
    nestedvirt: bool = False
    image: str | None = None
    root_source_vm_id: str | None = None
    root_source_vm_name: str | None = None
    last_active_at: float | None = None
    ssh_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> SshPublicKeyInfo
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> rule as written
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value (never rendered)
    files: dict[str, FileEntry] = field(default_factory=dict)  # absolute path -> file
    golden: bool = False  # seeded at start, never persisted

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__ if name not in ("files", "golden")}
        data["bounds"] = _fields(self.bounds)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VmRecord:
        values = dict(data)
        values["bounds"] = Bounds(**values["bounds"])
        return cls(**values)


@dataclass(slots=True)
class FilesystemRecord:
    filesystem_id: str
    seq: int
    owner_org_id: str
    name: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return _fields(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilesystemRecord:
        return cls(**data)


@dataclass(slots=True)
class MountRecord:
    mount_id: str
    seq: int
    vm_id: str
    filesystem_id: str
    path: str
    created_at: float
    ready_at: float  # epoch seconds from which an attaching mount reports mounted
    failed_detail: str | None = None

    def state(self, now: float) -> str:
        if now < self.ready_at:
            return "attaching"
        return "failed" if self.failed_detail is not None else "mounted"

    def to_json(self) -> dict[str, Any]:
        return _fields(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MountRecord:
        return cls(**data)


@dataclass(slots=True)
class RunRecord:
    run_id: str
    seq: int
    vm_id: str
    command: str | None
    state: str
    started_at: float
    completed_at: float | None
    exit_code: int | None
    stdout: bytes = b""
    stderr: bytes = b""

    def to_json(self) -> dict[str, Any]:
        data = _fields(self)
        data["stdout"] = base64.b64encode(self.stdout).decode()
        data["stderr"] = base64.b64encode(self.stderr).decode()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        values = dict(data)
        values["stdout"] = base64.b64decode(values["stdout"])
        values["stderr"] = base64.b64decode(values["stderr"])
        return cls(**values)


@dataclass(slots=True)
class IdempotencyRecord:
    """An Idempotency-Key bound to the request it first came with and what that request produced."""

    org_id: str
    operation: str
    key: str
    fingerprint: str
    result_id: str  # vm_id for fork, run_id for createRun
    status: int = 200

    @property
    def ident(self) -> str:
        return f"{self.org_id}\x1f{self.operation}\x1f{self.key}"

    def to_json(self) -> dict[str, Any]:
        return _fields(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdempotencyRecord:
        return cls(**data)
