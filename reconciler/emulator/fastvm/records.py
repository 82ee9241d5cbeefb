"""What the FastVM emulator stores: plain mutable records, guarded by :class:`~.state.FastvmState`'s lock.

Times are wall-clock seconds (``time.time()``); statuses that move on their own (provisioning -> running,
mount pending -> mounted, TTL expiry, build completion) are derived from deadlines when a record is read,
so no background task is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AttachmentRecord",
    "BuildRecord",
    "ServiceRecord",
    "SnapshotRecord",
    "SshKeyRecord",
    "StagingObject",
    "VmRecord",
    "VolumeRecord",
]


@dataclass
class SshKeyRecord:
    fingerprint: str  # "SHA256:<unpadded base64>"
    public_key: str  # "<type> <base64>" (the comment is kept apart)
    comment: str | None
    added_at: float


@dataclass
class ServiceRecord:
    name: str
    port: int
    h2c: bool


@dataclass
class VmRecord:
    vm_id: str
    org_id: str
    name: str
    machine_type: str
    cpu: int
    memory_mib: int
    disk_gib: int
    status: str
    created_at: float
    ready_at: float  # provisioning until then
    metadata: dict[str, str]
    env_vars: dict[str, str]
    firewall: dict[str, Any]  # the reference form, complete (see firewall.py)
    source_name: str = ""
    ttl: tuple[str, int] | None = None  # (action, seconds)
    expires_at_ms: int | None = None  # while running
    ttl_remaining_ms: int | None = None  # while paused
    paused_at: float | None = None
    ssh_keys: dict[str, SshKeyRecord] = field(default_factory=dict)
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class VolumeRecord:
    volume_id: str
    org_id: str
    name: str
    size_gib: int
    access_mode: str  # rw | ro
    created_at: float


@dataclass
class AttachmentRecord:
    vm_id: str
    volume_id: str
    mount_path: str
    read_only: bool
    attached_at: float
    ready_at: float
    failure: str | None  # set: the attachment turns failed (not mounted) at ready_at


@dataclass
class SnapshotRecord:
    snapshot_id: str
    org_id: str
    name: str
    vm_id: str
    created_at: float
    machine_type: str
    disk_gib: int
    env_vars: dict[str, str]
    metadata: dict[str, str]
    firewall: dict[str, Any]
    services: list[ServiceRecord]


@dataclass
class StagingObject:
    """A presigned upload/download pair's object (files and build contexts)."""

    org_id: str
    vm_id: str | None
    path: str
    upload_token: str
    download_token: str
    expires_at: float
    max_bytes: int
    data: bytes | None = None


@dataclass
class BuildRecord:
    build_id: str
    org_id: str
    image_ref: str
    name: str | None
    machine_type: str
    disk_gib: int
    created_at: float
    ready_at: float
    snapshot_id: str | None = None
